"""Keyword rules for movie-review sentence polarity (rt_polarity), used by benchmarks/label_model.py."""

# Keyword and regular-expression rules for positive (1) and negative (0) movie-review sentences, in the
# style of WRENCH's IMDb and Yelp rules (lists of sentiment words, a few negation and "too ..." patterns).
# Written once for this benchmark from what the words mean, before any label model was run on them, and
# not tuned on the results. The texts are lower-cased and tokenised ("is n't", "it 's").
POLARITY_RULES = {
    "pos_strong": (r"\b(?:masterpiece|masterful|brilliant|superb|outstanding|excellent|wonderful|terrific|"
                   r"marvelous|magnificent|gorgeous|stunning|remarkable|delightful)\b", 1),
    "pos_mild": (r"\b(?:good|great|fine|enjoyable|fun|funny|charming|moving|touching|engaging|entertaining|"
                 r"beautiful|beautifully|best)\b", 1),
    "pos_recommend": (r"\b(?:worth seeing|worth watching|must-see|recommend|a treat|a joy|pleasure)\b", 1),
    "pos_heart": (r"\b(?:heart|heartfelt|warm|tender|honest|soul|affecting|poignant)\b", 1),
    "neg_strong": (r"\b(?:worst|awful|terrible|horrible|dreadful|atrocious|unwatchable|abysmal|garbage|mess|"
                   r"disaster)\b", 0),
    "neg_mild": (r"\b(?:bad|boring|dull|tedious|bland|flat|lame|stupid|silly|pointless|predictable|tiresome|"
                 r"forgettable|mediocre)\b", 0),
    "neg_fails": (r"\b(?:fails?|failed|falls flat|waste|wasted|misses|lacks|lacking)\b", 0),
    "neg_too": (r"\btoo\b", 0),
    "neg_negated": (r"\b(?:not|n't|never|hardly|no)\s+(?:\w+\s+)?(?:good|great|funny|interesting|enough|worth)\b",
                    0),
}
