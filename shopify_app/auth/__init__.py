"""Install (token exchange, OAuth code grant), session tokens, and request signatures."""
