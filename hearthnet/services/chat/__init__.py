"""Private messages: encrypted to the recipient before they enter the log, delivered by sync (store-and-forward)."""
