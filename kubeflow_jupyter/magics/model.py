"""%model (being written)."""

from IPython.core.magic import Magics, magics_class


@magics_class
class ModelMagics(Magics):
    pass
