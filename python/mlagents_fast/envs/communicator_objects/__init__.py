"""Protobuf classes of the Unity link, at ML-Agents' module paths (``mlagents_envs.communicator_objects``).

For code that builds or reads Unity messages itself; the trainer's own link never imports
them (it encodes and decodes in Rust). The message modules are generated from ``protos/``
(``python protos/generate.py``); ML-Agents' other module names re-export from them, so
``from mlagents_fast.envs.communicator_objects.agent_info_pb2 import AgentInfoProto`` works.
Field names and numbers equal ML-Agents 1.1.0's, so bytes travel both ways.
"""
