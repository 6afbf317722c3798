import mlagents_fast
import pytest
from mlagents_fast import exceptions


def test_native_module_is_private_and_versioned():
    assert mlagents_fast.__version__ == mlagents_fast._native.__version__
    assert mlagents_fast.__version__.count(".") == 2


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (exceptions.InvalidArgumentError, ValueError),
        (exceptions.CorruptFileError, ValueError),
        (exceptions.StorageIOError, OSError),
        (exceptions.MessageDecodeError, ValueError),
    ],
)
def test_exception_hierarchy(cls, builtin):
    assert issubclass(cls, exceptions.MlagentsFastError)
    assert issubclass(cls, builtin)
