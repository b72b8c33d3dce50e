"""Services register capabilities on the bus; one package per service."""
