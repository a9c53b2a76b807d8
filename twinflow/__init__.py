"""twinflow: patient digital twins from imaging, variant calls and labs."""

__version__ = "0.1.0"
