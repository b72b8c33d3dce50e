"""Finding peers: static and joined peers, mDNS (zeroconf) and UDP multicast."""
