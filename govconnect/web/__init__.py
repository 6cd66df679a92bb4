"""Publishing surfaces: the mobile government site (/m/), TV feeds and page (/feeds/tv.*, /tv/)."""
