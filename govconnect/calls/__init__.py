"""Click-to-dial (双呼): staff and operators call a person through the government number."""
