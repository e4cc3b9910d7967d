"""v2: several models; each caller's choice kept in a server-side session."""
