"""Virtual Bambu Lab printers: printer firmware as MQTT clients of mosquitto."""
