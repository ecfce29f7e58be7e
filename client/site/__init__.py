"""The site agent of one data centre (DC): its local store, data manifests, private set intersection,
off-chain artefact exchange and the event-driven fusion round, coordinated through the task's chaincode."""
