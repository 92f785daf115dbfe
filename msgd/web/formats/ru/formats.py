# "T": the zone's abbreviation (MSK), or its offset (+05) where it has none.
DATETIME_FORMAT = "d.m.Y H:i:s T"
SHORT_DATETIME_FORMAT = "d.m.Y H:i T"
DATE_FORMAT = "d.m.Y"
SHORT_DATE_FORMAT = "d.m.Y"
TIME_FORMAT = "H:i:s"
