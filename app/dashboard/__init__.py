"""The officials' dashboard: the year's assistance figures as a page served by the API itself."""
