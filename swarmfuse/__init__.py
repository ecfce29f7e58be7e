"""swarmfuse: multimodal data fusion between organisations on a permissioned Hyperledger Fabric network.

Subpackages, one concern each (and one top-level folder each in the source tree):

- ``swarmfuse.network``    pinned Fabric binaries, local networks, a channel per task, chaincode deployment
- ``swarmfuse.chaincode``  the Python chaincode (its own shim) and the consortium contracts
- ``swarmfuse.client``     the Fabric Gateway client, the site agent, the off-chain exchange, the auditor
- ``swarmfuse.extractors`` AWD-LSTM and ResNet50 feature extractors, ONNX export and runtime, fusion
"""

__version__ = "0.1.0"
