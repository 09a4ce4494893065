"""evalkit view: the results folder as a live, read-only web application."""
