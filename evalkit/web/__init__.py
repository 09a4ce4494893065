"""The web stack the rating studies and the live view share: Starlette on uvicorn, Jinja2 pages, tokens."""
