"""Stand-ins for the outside world in tests and the demo: an HTTP archive and a JSOC export
service on 127.0.0.1 that inject faults, and bad files of every kind."""
