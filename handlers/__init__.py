"""Task handlers: the HTTP task endpoint, one module per pipeline step, media and AI adapters."""
