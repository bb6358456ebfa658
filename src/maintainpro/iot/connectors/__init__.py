"""Protocol connectors: one interface, four protocols (MQTT, CoAP, OPC-UA, Modbus)."""
