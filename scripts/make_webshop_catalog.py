"""Generate the synthetic WebShop catalog shipped with agentdistill.

The original WebShop product files (Amazon scrapes on Google Drive) cannot be shipped or
downloaded here, so this script writes a small catalog *in the original schema*:

* ``items``     — a list like ``items_shuffle*.json`` (``asin``, ``name``, ``full_description``,
  ``small_description``, ``pricing``, ``product_category``, ``category``, ``query``,
  ``customization_options``, ``average_rating``, ``Reviews``, ...);
* ``items_ins`` — a dict like ``items_ins_v2*.json`` (``asin -> {"attributes": [...]}``);
* ``human_ins`` — a dict like ``items_human_ins.json`` (``asin -> [{"instruction",
  "instruction_attributes", "instruction_options", ...}]``).

Five categories as in the original (beauty, food, fashion, furniture, electronics), ten
product types each, 25 products per type (1,250 products) and two instructions per product
(2,500 goals). Everything comes from one seeded ``random.Random``; the output is written
as compact JSON and gzip-compressed with ``mtime=0``, so running the script again
reproduces ``agentdistill/envs/webshop/data/webshop_synthetic.json.gz`` byte for byte::

    python scripts/make_webshop_catalog.py            # rewrite the shipped file
    python scripts/make_webshop_catalog.py --check    # exit 1 if it would differ
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

SEED = 20240607
PRODUCTS_PER_TYPE = 25
GOALS_PER_PRODUCT = 2
DEFAULT_OUT = (
    Path(__file__).resolve().parents[1]
    / "agentdistill" / "envs" / "webshop" / "data" / "webshop_synthetic.json.gz"
)

COLORS = ["black", "white", "navy blue", "red", "grey", "beige", "green", "pink", "brown",
          "light blue", "purple", "yellow", "olive", "burgundy", "silver", "gold"]
WOOD_COLORS = ["espresso", "walnut", "white oak", "rustic brown", "black", "grey wash",
               "natural", "cherry", "white", "dark walnut"]
APPAREL_SIZES = ["x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"]
SHOE_SIZES = ["6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"]

# category -> (department path head, general attributes, product types)
# product type: (type phrase, query, category path tail, type attributes, option groups)
# option group: (name, value pool, (min values, max values))
CATALOG_SPEC: dict[str, tuple[str, list[str], list[tuple]]] = {
    "beauty": (
        "Beauty & Personal Care",
        ["cruelty free", "paraben free", "long lasting", "easy to use", "travel size",
         "natural ingredients", "sensitive skin", "fragrance free", "alcohol free",
         "dermatologist tested"],
        [
            ("shampoo", "shampoo", "Hair Care › Shampoo & Conditioner › Shampoos",
             ["sulfate free", "dry hair", "argan oil", "hair growth"],
             [("size", ["8.5 fl oz (pack of 1)", "16.9 fl oz (pack of 1)", "33.8 fl oz (pack of 1)",
                        "8.5 fl oz (pack of 2)", "12 fl oz (pack of 3)"], (2, 4)),
              ("scent", ["coconut", "lavender", "tea tree", "citrus", "rosemary mint",
                         "unscented"], (2, 3))]),
            ("lipstick", "lipstick", "Makeup › Lips › Lipstick",
             ["matte finish", "highly pigmented", "long wear", "moisturizing"],
             [("color", ["ruby red", "nude beige", "berry", "coral", "mauve", "wine",
                         "pink blush", "classic red"], (3, 5))]),
            ("face moisturizer", "face moisturizer",
             "Skin Care › Face › Creams & Moisturizers › Face Moisturizers",
             ["hyaluronic acid", "dry skin", "anti aging", "oil free"],
             [("size", ["1.7 oz", "2.5 oz", "3.4 oz", "1.7 oz (pack of 2)"], (2, 3))]),
            ("hair extension", "hair extensions", "Hair Care › Hair Extensions, Wigs & Accessories",
             ["clip in", "natural looking", "heat resistant", "high quality"],
             [("color", ["natural black", "dark brown", "ash blonde", "honey blonde",
                         "auburn", "platinum"], (3, 5)),
              ("size", ["14 inch", "18 inch", "22 inch"], (2, 3))]),
            ("nail polish", "nail polish", "Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
             ["quick dry", "chip resistant", "non toxic", "gel like"],
             [("color", ["cherry red", "soft pink", "midnight blue", "mint green", "clear",
                         "lilac", "sunset orange"], (3, 5))]),
            ("body lotion", "body lotion", "Skin Care › Body › Moisturizers › Lotions",
             ["shea butter", "dry skin", "non greasy", "vitamin e"],
             [("size", ["8 fl oz", "13.5 fl oz", "16 fl oz (pack of 2)"], (2, 3)),
              ("scent", ["vanilla", "cocoa butter", "aloe", "unscented"], (2, 3))]),
            ("eyeshadow palette", "eyeshadow palette", "Makeup › Eyes › Eyeshadow",
             ["highly pigmented", "blendable", "shimmer", "matte finish"],
             [("color", ["warm neutrals", "smoky", "rose gold", "jewel tones", "nude"],
               (2, 4))]),
            ("deodorant", "deodorant", "Personal Care › Deodorants & Antiperspirants › Deodorant",
             ["aluminum free", "baking soda free", "all day protection", "natural ingredients"],
             [("scent", ["bright citrus", "calming lavender", "ginger fresh", "unscented",
                         "cedar"], (2, 4)),
              ("size", ["2.65 oz (pack of 1)", "2.65 oz (pack of 2)", "3 ounce (pack of 3)"],
               (2, 3))]),
            ("perfume", "perfume for women", "Fragrance › Women's › Eau de Parfum",
             ["floral scent", "long lasting", "gift set", "spray bottle"],
             [("size", ["1 fl oz", "1.7 fl oz", "3.4 fl oz"], (2, 3))]),
            ("face mask", "sheet face mask", "Skin Care › Face › Treatments & Masks › Masks",
             ["hydrating", "brightening", "collagen", "pore minimizing"],
             [("size", ["5 count", "10 count", "20 count"], (2, 3))]),
        ],
    ),
    "food": (
        "Grocery & Gourmet Food",
        ["gluten free", "non gmo", "usda organic", "kosher certified", "individually wrapped",
         "ready to eat", "low calorie", "no artificial flavors", "plant based", "dairy free"],
        [
            ("protein bar", "protein bars", "Snack Foods › Bars › Protein Bars",
             ["high protein", "low sugar", "keto friendly", "soy free"],
             [("flavor", ["chocolate peanut butter", "cookies and cream", "salted caramel",
                          "birthday cake", "almond coconut"], (2, 4)),
              ("size", ["12 count (pack of 1)", "12 count (pack of 2)", "24 count"], (2, 3))]),
            ("green tea", "green tea bags", "Beverages › Coffee, Tea & Cocoa › Tea › Green Tea",
             ["caffeine free", "antioxidant rich", "decaf", "loose leaf"],
             [("flavor", ["jasmine", "matcha", "mint", "lemon ginger", "honey"], (2, 4)),
              ("size", ["20 count (pack of 1)", "20 count (pack of 6)", "100 count"], (2, 3))]),
            ("coffee beans", "whole bean coffee",
             "Beverages › Coffee, Tea & Cocoa › Coffee › Whole Coffee Beans",
             ["dark roast", "medium roast", "fair trade", "single origin"],
             [("size", ["12 ounce", "2 pound", "5 pound"], (2, 3)),
              ("flavor", ["french roast", "colombian", "espresso", "hazelnut"], (2, 3))]),
            ("granola", "granola", "Breakfast Foods › Cereals › Granola",
             ["whole grain", "high fiber", "low sugar", "nut free"],
             [("flavor", ["honey almond", "maple pecan", "blueberry", "cinnamon raisin"], (2, 4)),
              ("size", ["11 ounce (pack of 1)", "11 ounce (pack of 3)"], (2, 2))]),
            ("dark chocolate", "dark chocolate bar", "Snack Foods › Candy & Chocolate › Chocolate Bars",
             ["sugar free", "fair trade", "vegan", "70% cacao"],
             [("flavor", ["sea salt", "orange", "raspberry", "mint", "espresso bean"], (2, 4)),
              ("size", ["3.5 ounce (pack of 4)", "3.5 ounce (pack of 12)"], (2, 2))]),
            ("beef jerky", "beef jerky", "Meat & Seafood › Jerky & Dried Meats › Beef Jerky",
             ["high protein", "low fat", "grass fed", "no added nitrates"],
             [("flavor", ["original", "teriyaki", "peppered", "sweet and spicy", "smoked"],
               (2, 4)),
              ("size", ["2.85 ounce", "10 ounce", "16 ounce"], (2, 3))]),
            ("olive oil", "extra virgin olive oil", "Pantry Staples › Cooking Oils › Olive Oils",
             ["cold pressed", "first cold press", "glass bottle", "single origin"],
             [("size", ["16.9 fl oz", "25.3 fl oz", "33.8 fl oz", "101 fl oz"], (2, 3))]),
            ("pasta sauce", "pasta sauce", "Pantry Staples › Sauces, Gravies & Marinades › Pasta Sauces",
             ["no sugar added", "low sodium", "keto friendly", "slow cooked"],
             [("flavor", ["marinara", "tomato basil", "arrabbiata", "garlic herb"], (2, 4)),
              ("size", ["24 ounce (pack of 1)", "24 ounce (pack of 6)"], (2, 2))]),
            ("almond butter", "almond butter", "Pantry Staples › Jams, Jellies & Sweet Spreads › Nut Butters",
             ["no sugar added", "keto friendly", "raw", "no palm oil"],
             [("flavor", ["creamy", "crunchy", "maple", "vanilla"], (2, 3)),
              ("size", ["12 ounce", "16 ounce (pack of 2)"], (2, 2))]),
            ("gummy candy", "gummy candy", "Snack Foods › Candy & Chocolate › Gummy Candies",
             ["fat free", "real fruit juice", "vegan", "halal"],
             [("flavor", ["sour fruit", "cherry", "tropical", "watermelon", "assorted"], (2, 4)),
              ("size", ["5 pound", "2 pound", "28.8 ounce"], (2, 3))]),
        ],
    ),
    "fashion": (
        "Clothing, Shoes & Jewelry",
        ["machine wash", "hand wash", "imported", "regular fit", "soft material",
         "quality materials", "everyday wear", "daily wear", "breathable", "lightweight"],
        [
            ("t-shirt", "men's t-shirt", "Men › Clothing › Shirts › T-Shirts",
             ["short sleeve", "classic fit", "cotton jersey", "crew neck"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
            ("running shoes", "women's running shoes", "Women › Shoes › Athletic › Running",
             ["rubber sole", "lace up", "memory foam", "non slip"],
             [("size", SHOE_SIZES, (5, 7)), ("color", COLORS, (2, 4))]),
            ("hoodie", "pullover hoodie", "Men › Clothing › Fashion Hoodies & Sweatshirts",
             ["long sleeve", "drawstring closure", "fleece lined", "kangaroo pocket"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
            ("jeans", "women's skinny jeans", "Women › Clothing › Jeans",
             ["high waist", "button closure", "stretch fabric", "slim fit"],
             [("size", ["24", "26", "28", "30", "32", "34"], (4, 6)),
              ("color", ["light wash", "dark wash", "black", "medium blue"], (2, 4))]),
            ("maxi dress", "women's maxi dress", "Women › Clothing › Dresses › Casual",
             ["short sleeve", "elastic waist", "v neck", "polyester spandex"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
            ("crew socks", "athletic crew socks", "Men › Clothing › Socks › Athletic Socks",
             ["moisture wicking", "cushioned sole", "arch support", "6 pairs"],
             [("size", ["shoe size 6-9", "shoe size 9-12", "shoe size 12-15"], (2, 3)),
              ("color", ["black", "white", "grey", "assorted"], (2, 4))]),
            ("yoga leggings", "yoga leggings", "Women › Clothing › Active › Leggings",
             ["high waist", "tummy control", "squat proof", "quick drying"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
            ("winter jacket", "winter jacket", "Women › Clothing › Coats, Jackets & Vests › Down Jackets",
             ["faux fur", "zipper closure", "water resistant", "warm lining"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
            ("sandals", "men's sandals", "Men › Shoes › Sandals",
             ["open toe", "arch support", "adjustable strap", "rubber sole"],
             [("size", SHOE_SIZES, (5, 7)), ("color", ["black", "brown", "tan", "navy blue"],
                                              (2, 4))]),
            ("swim trunks", "men's swim trunks", "Men › Clothing › Swim › Board Shorts",
             ["quick drying", "mesh lining", "drawstring closure", "elastic waist"],
             [("size", APPAREL_SIZES, (4, 6)), ("color", COLORS, (3, 5))]),
        ],
    ),
    "furniture": (
        "Home & Kitchen",
        ["easy assembly", "living room", "space saving", "storage space", "easy clean",
         "contemporary design", "modern style", "stable construction", "bedroom",
         "home office"],
        [
            ("sofa", "loveseat sofa", "Furniture › Living Room Furniture › Sofas & Couches",
             ["velvet fabric", "solid wood legs", "mid century", "high density foam"],
             [("color", ["grey", "navy blue", "beige", "green", "pink"], (2, 4))]),
            ("bookshelf", "bookshelf", "Furniture › Home Office Furniture › Bookcases",
             ["engineered wood", "5 tier", "open shelf", "wall mounted"],
             [("color", WOOD_COLORS, (2, 4))]),
            ("office chair", "ergonomic office chair",
             "Furniture › Home Office Furniture › Home Office Chairs › Desk Chairs",
             ["lumbar support", "height adjustable", "mesh back", "swivel"],
             [("color", ["black", "grey", "white", "blue"], (2, 4))]),
            ("coffee table", "coffee table", "Furniture › Living Room Furniture › Tables › Coffee Tables",
             ["solid wood", "lift top", "metal frame", "round"],
             [("color", WOOD_COLORS, (2, 4)),
              ("size", ["39.4 inch", "43.3 inch", "47.2 inch"], (2, 3))]),
            ("nightstand", "nightstand", "Furniture › Bedroom Furniture › Nightstands",
             ["2 drawers", "solid wood", "charging station", "open shelf"],
             [("color", WOOD_COLORS, (2, 4)),
              ("size", ["1 piece", "set of 2"], (2, 2))]),
            ("bar stool", "counter height bar stools",
             "Furniture › Game & Recreation Room Furniture › Home Bar Furniture › Barstools",
             ["swivel", "height adjustable", "faux leather", "footrest"],
             [("color", ["black", "grey", "white", "brown"], (2, 4)),
              ("size", ["set of 2", "set of 4"], (2, 2))]),
            ("tv stand", "tv stand", "Furniture › Living Room Furniture › Television Stands & Entertainment Centers",
             ["cable management", "engineered wood", "storage cabinet", "led lights"],
             [("color", WOOD_COLORS, (2, 4)),
              ("size", ["55 inch", "65 inch", "70 inch"], (2, 3))]),
            ("bed frame", "platform bed frame", "Furniture › Bedroom Furniture › Beds, Frames & Bases › Beds",
             ["metal frame", "no box spring needed", "under bed storage", "noise free"],
             [("size", ["twin", "full", "queen", "king"], (3, 4)),
              ("color", ["black", "white", "grey"], (2, 3))]),
            ("dining chair", "dining chairs", "Furniture › Kitchen & Dining Room Furniture › Chairs",
             ["upholstered seat", "solid wood legs", "high back", "mid century"],
             [("color", ["grey", "beige", "green", "navy blue", "black"], (2, 4)),
              ("size", ["set of 2", "set of 4", "set of 6"], (2, 3))]),
            ("shoe rack", "shoe rack", "Storage & Organization › Clothing & Closet Storage › Shoe Organizers",
             ["4 tier", "metal frame", "stackable", "entryway"],
             [("color", ["black", "white", "bamboo", "bronze"], (2, 4))]),
        ],
    ),
    "electronics": (
        "Electronics",
        ["easy to use", "high performance", "plug and play", "compact design", "durable",
         "light weight", "easy install", "long lasting", "high speed", "portable"],
        [
            ("wireless earbuds", "wireless earbuds", "Headphones, Earbuds & Accessories › Earbuds",
             ["noise cancelling", "bluetooth 5.3", "charging case", "water resistant"],
             [("color", ["black", "white", "navy blue", "rose gold"], (2, 4))]),
            ("bluetooth speaker", "portable bluetooth speaker",
             "Portable Audio & Video › Portable Speakers & Docks › Portable Bluetooth Speakers",
             ["waterproof", "stereo sound", "long battery life", "built in microphone"],
             [("color", ["black", "blue", "red", "grey", "green"], (2, 4))]),
            ("usb c cable", "usb c charging cable", "Computers & Accessories › Cables › USB Cables",
             ["fast charging", "braided nylon", "data transfer", "tangle free"],
             [("size", ["3 ft", "6 ft", "10 ft", "3 ft (pack of 3)"], (2, 4)),
              ("color", ["black", "white", "grey"], (2, 3))]),
            ("phone case", "iphone case", "Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
             ["shockproof", "slim fit", "wireless charging compatible", "raised edges"],
             [("color", ["clear", "black", "midnight green", "lavender", "red"], (2, 4)),
              ("style", ["iphone 14", "iphone 14 pro", "iphone 15", "iphone 15 pro max"], (2, 4))]),
            ("hdmi cable", "hdmi cable", "Television & Video › Accessories › Cables › HDMI Cables",
             ["4k ultra hd", "high speed", "gold plated", "ethernet"],
             [("size", ["3 ft", "6 ft", "10 ft", "15 ft"], (2, 4))]),
            ("power bank", "portable charger power bank",
             "Cell Phones & Accessories › Chargers & Power Adapters › Portable Power Banks",
             ["fast charging", "usb c", "led display", "dual output"],
             [("style", ["10000mah", "20000mah", "26800mah"], (2, 3)),
              ("color", ["black", "white", "blue"], (2, 3))]),
            ("laptop stand", "laptop stand", "Computers & Accessories › Laptop Accessories › Stands",
             ["height adjustable", "aluminum alloy", "foldable", "heat dissipation"],
             [("color", ["silver", "space grey", "black"], (2, 3))]),
            ("smart watch", "smart watch", "Wearable Technology › Smartwatches",
             ["heart rate monitor", "sleep tracking", "water resistant", "long battery life"],
             [("color", ["black", "silver", "rose gold", "blue"], (2, 4)),
              ("size", ["41mm", "45mm"], (2, 2))]),
            ("webcam", "hd webcam", "Computers & Accessories › Computer Accessories & Peripherals › Webcams",
             ["1080p hd", "built in microphone", "auto focus", "privacy cover"],
             [("style", ["1080p", "2k", "4k"], (2, 3))]),
            ("wireless mouse", "wireless mouse", "Computers & Accessories › Computer Accessories & Peripherals › Mice",
             ["ergonomic design", "silent click", "rechargeable", "usb receiver"],
             [("color", ["black", "white", "grey", "pink", "blue"], (2, 4))]),
        ],
    ),
}

BRAND_SYLLABLES = ["lu", "mo", "ra", "ve", "ki", "no", "sa", "ta", "zen", "bri", "co", "dex",
                   "fo", "ga", "hal", "io", "ja", "ly", "mer", "ne", "or", "pi", "qua", "ro",
                   "sol", "tri", "ul", "vi", "wex", "yo"]
INSTRUCTION_TEMPLATES = [
    "i am looking for {a} {attrs} {type}{opts}",
    "i need {a} {type} that is {attrs}{opts}",
    "find me {a} {attrs} {type}{opts}",
    "i want to buy {a} {type} which is {attrs}{opts}",
    "i would like {a} {attrs} {type}{opts}",
]
REVIEW_TITLES = ["Works great", "Exactly as described", "Good value", "Not bad",
                 "Would buy again", "Decent quality", "Love it", "Could be better"]
REVIEW_BODIES = ["Arrived quickly and does what it says.", "Quality is fine for the price.",
                 "I have been using it for a month with no problems.",
                 "A bit different from the pictures but still good.",
                 "My family likes it a lot.", "Packaging was damaged but the product is ok."]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def make_brands(rng: random.Random, n: int) -> list[str]:
    """Invented brand names, unique, capitalised."""
    brands: list[str] = []
    while len(brands) < n:
        name = "".join(rng.choice(BRAND_SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = name.capitalize()
        if name not in brands:
            brands.append(name)
    return brands


def make_asin(rng: random.Random, used: set[str]) -> str:
    """Ten characters, ``B0`` + 8 uppercase alphanumerics, like Amazon ASINs."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    while True:
        asin = "B0" + "".join(rng.choice(alphabet) for _ in range(8))
        if asin not in used:
            used.add(asin)
            return asin


def make_product(rng: random.Random, brand: str, asin: str, category: str, dept: str,
                 general_attrs: list[str], ptype: tuple) -> tuple[dict, list[str]]:
    """One product in the items_shuffle schema, plus its attribute list (items_ins)."""
    type_phrase, query, cat_tail, type_attrs, option_spec = ptype
    attrs = rng.sample(type_attrs, rng.randint(2, 3)) + rng.sample(general_attrs, rng.randint(1, 2))
    title_attrs = [a.title() for a in attrs[: rng.randint(1, 2)]]
    extra = rng.choice(["", " for Women", " for Men", " for Home", " - Premium", " Value Pack",
                        " Classic", " 2024 Edition", ""])
    title = f"{brand} {' '.join(title_attrs)} {type_phrase.title()}{extra}"
    options: dict[str, list[dict]] = {}
    for group, pool, (lo, hi) in option_spec:
        values = rng.sample(pool, min(len(pool), rng.randint(lo, hi)))
        options[group] = [{"value": v, "image": None} for v in values]
    price = rng.randint(4, 140) + rng.choice([0.99, 0.49, 0.95, 0.0, 0.79])
    desc = (
        f"The {brand} {type_phrase} is made for people who want {_join(attrs[:3])}. "
        f"{rng.choice(['Carefully made', 'Designed', 'Built', 'Crafted'])} "
        f"{rng.choice(['for everyday use', 'to last', 'with care', 'for comfort'])}, "
        f"it is a {rng.choice(['great gift', 'customer favourite', 'reliable choice'])}."
    )
    bullets = [f"{a.upper() if len(a) < 4 else a.capitalize()}: "
               f"{rng.choice(['designed for', 'made with', 'tested for'])} {a}." for a in attrs]
    bullets.append(f"Package includes: 1 x {type_phrase}.")
    reviews = [
        {"title": rng.choice(REVIEW_TITLES), "score": rng.randint(2, 5),
         "body": rng.choice(REVIEW_BODIES)}
        for _ in range(rng.randint(0, 3))
    ]
    product = {
        "asin": asin,
        "name": title,
        "full_description": desc,
        "small_description": bullets,
        "pricing": f"${price:.2f}",
        "images": [""],
        "product_category": f"{dept} › {cat_tail}",
        "category": category,
        "query": query,
        "brand": brand,
        "average_rating": round(rng.uniform(3.0, 5.0), 1),
        "customization_options": options,
        "Reviews": reviews,
    }
    return product, attrs


def make_instructions(rng: random.Random, product: dict, attrs: list[str], type_phrase: str,
                      n: int) -> list[dict]:
    """``n`` goals for one product in the items_human_ins schema (attributes + options)."""
    out = []
    groups = list(product["customization_options"].items())
    for k in range(n):
        goal_attrs = rng.sample(attrs, rng.randint(1, min(3, len(attrs))))
        n_opts = rng.randint(1, len(groups)) if groups else 0
        chosen = rng.sample(groups, n_opts)
        goal_opts = [(g, rng.choice(vals)["value"]) for g, vals in chosen]
        opts_text = ""
        if goal_opts:
            opts_text = ", with " + " and ".join(f"{g}: {v}" for g, v in goal_opts)
        template = rng.choice(INSTRUCTION_TEMPLATES)
        plural = type_phrase.endswith("s") and not type_phrase.endswith("ss")
        article = "" if plural else _article(
            goal_attrs[0] if "{attrs} {type}" in template else type_phrase)
        text = template.format(a=article, attrs=_join(goal_attrs), type=type_phrase,
                               opts=opts_text)
        text = " ".join(text.split())
        out.append({
            "asin": product["asin"],
            "instruction": text,
            "instruction_attributes": goal_attrs,
            "instruction_options": [v for _, v in goal_opts],
            "assignment_id": f"synthetic-{product['asin']}-{k}",
        })
    return out


def build_catalog(seed: int = SEED) -> dict:
    """The whole catalog as one JSON-able dict (order is part of the format)."""
    rng = random.Random(seed)
    n_types = sum(len(spec[2]) for spec in CATALOG_SPEC.values())
    brands = make_brands(rng, 60)
    used: set[str] = set()
    rows: list[tuple[dict, list[str], str]] = []
    for category, (dept, general, types) in CATALOG_SPEC.items():
        for ptype in types:
            for _ in range(PRODUCTS_PER_TYPE):
                brand = rng.choice(brands)
                product, attrs = make_product(rng, brand, make_asin(rng, used), category,
                                              dept, general, ptype)
                rows.append((product, attrs, ptype[0]))
    rng.shuffle(rows)  # items_shuffle: product order carries no category information
    items, items_ins, human_ins = [], {}, {}
    for product, attrs, type_phrase in rows:
        items.append(product)
        items_ins[product["asin"]] = {"attributes": attrs}
        human_ins[product["asin"]] = make_instructions(rng, product, attrs, type_phrase,
                                                       GOALS_PER_PRODUCT)
    return {
        "meta": {
            "generator": "scripts/make_webshop_catalog.py",
            "seed": seed,
            "n_types": n_types,
            "n_products": len(items),
            "n_instructions": sum(len(v) for v in human_ins.values()),
            "note": "synthetic catalog in the original WebShop schema; scores on it are not "
                    "comparable to published WebShop numbers",
        },
        "items": items,
        "items_ins": items_ins,
        "human_ins": human_ins,
    }


def catalog_bytes(seed: int = SEED) -> bytes:
    """The exact bytes of the shipped file: compact UTF-8 JSON, gzip level 9, mtime 0."""
    data = json.dumps(build_catalog(seed), ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    blob = catalog_bytes(args.seed)
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == blob
        print(f"{args.out}: {'identical' if same else 'DIFFERS'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    print(f"wrote {args.out} ({len(blob)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
