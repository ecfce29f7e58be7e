"""swarmfuse clients; the Fabric Gateway client is ``swarmfuse.client.gateway``."""
