"""The government directory: regions, departments, contacts, import and export."""
