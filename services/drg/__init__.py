"""DRG payment at the treating agency (issue 13): the grouping tables' files and, later, weights and payments."""
