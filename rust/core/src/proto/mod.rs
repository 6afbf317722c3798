//! Unity communicator wire format (being written).
