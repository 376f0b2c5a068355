"""Virtual Bambu Lab printers: an in-process MQTT broker and printer firmware."""
