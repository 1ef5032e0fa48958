"""The hospital HIS simulator: generates patients and realistic bills and discharges them."""
