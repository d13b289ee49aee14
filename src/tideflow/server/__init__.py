"""The API server and its services. Needs the server stack; nothing outside ``server`` imports it
(except the CLI's ``server`` commands)."""
