"""The swarmfuse consortium contracts (membership, summaries, fusion rounds, audit) and ``Sample``."""
