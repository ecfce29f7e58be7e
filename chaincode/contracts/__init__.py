"""The swarmfuse consortium contracts: task, membership, summaries, fusion rounds, audit."""
