"""Citizens: subscribers, their categories and regions, and every way of leaving."""
