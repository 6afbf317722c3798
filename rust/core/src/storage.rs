//! Binary field-file format shared by the replay buffer and AgentBuffer (being written).
