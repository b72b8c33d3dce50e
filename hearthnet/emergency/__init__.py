"""Emergency mode: is the internet there? Probes named in config decide online / degraded / offline."""
