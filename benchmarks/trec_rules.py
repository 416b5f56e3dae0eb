"""Keyword rules for TREC's six coarse classes, used by benchmarks/label_model.py and its test."""

# Keyword and regular-expression rules for TREC's six coarse classes, written once for this benchmark from
# what the classes mean (not tuned on its results). WRENCH's own TREC set has 68 rules, not stored here.
TREC_RULES = {
    "who": (r"^(?:who|whom|whose)\b", "HUM"),
    "what_person": (r"^(?:what|which) (?:person|man|woman|actor|actress|president|author|king|queen|singer)", "HUM"),
    "name_person": (r"name of the (?:person|man|woman|author|inventor)", "HUM"),
    "where": (r"^where\b", "LOC"),
    "what_place": (r"^(?:what|which) (?:country|city|state|continent|river|mountain|island|ocean|county|"
                   r"capital)", "LOC"),
    "when": (r"^when\b", "NUM"),
    "how_quantity": (r"^how (?:many|much|long|far|old|tall|big|large|fast|hot|cold|high|deep)\b", "NUM"),
    "what_number": (r"^what (?:year|date|day|percentage|population|is the population|temperature)", "NUM"),
    "stand_for": (r"stand for|abbreviation|acronym", "ABBR"),
    "why": (r"^why\b", "DESC"),
    "how_manner": (r"^how (?:do|does|did|can|is|are|to|was|were)\b", "DESC"),
    "definition": (r"^what (?:is|are|was) (?:a |an |the )?\w+ \?$|\bdefin|\bmean(?:ing)?\b", "DESC"),
    "what_thing": (r"^(?:what|which) (?:kind|type|color|colour|animal|breed|sport|food|instrument|language|game|"
                   r"disease|book|movie|film|bird|drink|plant|flower)", "ENTY"),
}
