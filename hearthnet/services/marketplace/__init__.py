"""The marketplace: offers, requests, notices and emergency posts as signed events."""
