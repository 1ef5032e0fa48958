"""The treating region's agency (就医地医保经办机构): admissions, charges, discharge settlement."""
