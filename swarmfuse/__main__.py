from swarmfuse.cli import main

main()
