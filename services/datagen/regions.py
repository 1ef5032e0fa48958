"""The demo regions and their designated hospitals, as the generators see them.

The one loader lives in `services/common/regions.py`; this module keeps the generators' names for it.
"""

from services.common.regions import (  # noqa: F401 - re-exported
    REGIONS_DIR, REGIONS_FILE, Hospital, Region, demo_region_codes, load_region_list as load_regions,
)
