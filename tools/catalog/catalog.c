/*
 * catalog.c: the deterministic catalog (catalog.h). Everything a product is made of comes from
 * the tables below and from its own splitmix64 stream, with integer arithmetic only: no libm, so
 * the same seed gives the same bytes on every machine and C library.
 */
#include "catalog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A list of strings ending with NULL, so the tables below stay readable. */
typedef const char *const words_t[];

struct category {
    const char *name;
    const char *const *adjectives; /* NULL: the shared ones */
    const char *const *materials;  /* or topics, for books */
    const char *const *nouns;
    const char *const *uses;     /* "made for ..." */
    const char *const *features; /* sentences; %n noun, %m material (lowercase) */
    const char *const *tags;
    int64_t price_lo, price_hi; /* cents */
};

static words_t shared_adjectives = {
    "Compact", "Classic", "Premium", "Essential",    "Lightweight", "Deluxe",     "Rugged",
    "Modern",  "Vintage", "Smart",   "Professional", "Everyday",    "Portable",   "Heavy-Duty",
    "Elegant", "Eco",     "Quiet",   "Sturdy",       "Foldable",    "Minimalist", NULL,
};

static words_t book_adjectives = {
    "Illustrated", "Practical",  "Complete", "Pocket",    "Concise",    "Modern",
    "Essential",   "Beginner's", "Advanced", "Annotated", "Definitive", NULL,
};

static words_t electronics_materials = {"Aluminium", "Graphite",    "Carbon",
                                        "Titanium",  "Matte Black", "Silver",
                                        "Glass",     "Polymer",     NULL};
static words_t electronics_nouns = {
    "Headphones",     "Bluetooth Speaker",
    "Power Bank",     "USB-C Charger",
    "Smartwatch",     "Webcam",
    "Wireless Mouse", "Mechanical Keyboard",
    "E-Reader",       "Action Camera",
    "Soundbar",       "Monitor",
    "Router",         "Tablet Stand",
    "Earbuds",        NULL,
};
static words_t electronics_uses = {"music on the go", "working from home", "long trips",
                                   "gaming sessions", "crisp video calls", NULL};
static words_t electronics_features = {
    "Its battery lasts a full day on one charge.",
    "It pairs with phones, tablets and laptops in seconds.",
    "The %m housing keeps it light and cool.",
    "Firmware updates arrive over the air.",
    "A two-year warranty covers every %n.",
    NULL,
};
static words_t electronics_tags = {
    "wireless", "bluetooth",  "usb-c",  "rechargeable",  "noise-cancelling", "4k", "hd",
    "portable", "smart-home", "gaming", "fast-charging", "waterproof",       NULL,
};

static words_t kitchen_materials = {"Steel",  "Stainless Steel", "Cast Iron", "Ceramic", "Bamboo",
                                    "Copper", "Walnut",          "Enamel",    "Glass",   NULL};
static words_t kitchen_nouns = {
    "Chef's Knife",  "Frying Pan",    "Saucepan",       "Cutting Board",
    "Kettle",        "French Press",  "Mixing Bowl",    "Dutch Oven",
    "Salad Spinner", "Spice Grinder", "Baking Tray",    "Coffee Grinder",
    "Toaster",       "Utensil Set",   "Food Container", NULL,
};
static words_t kitchen_uses = {"everyday cooking", "weekend baking", "busy family kitchens",
                               "slow Sunday breakfasts", NULL};
static words_t kitchen_features = {
    "It is dishwasher safe and easy to clean.",
    "The %m surface heats evenly and resists stains.",
    "It works on gas, electric and induction hobs.",
    "Professional chefs and home cooks rely on this %n.",
    "Balanced weight keeps your hands steady during long prep sessions.",
    NULL,
};
static words_t kitchen_tags = {"dishwasher-safe", "non-stick", "induction",    "oven-safe",
                               "bpa-free",        "stainless", "handmade",     "gift",
                               "baking",          "coffee",    "eco-friendly", NULL};

static words_t books_materials = {
    "Sourdough",      "Python",        "Gardening", "Astronomy",    "Woodworking",
    "Photography",    "Mediterranean", "Chess",     "Birdwatching", "Statistics",
    "Bicycle Repair", "Meditation",    NULL};
static words_t books_nouns = {"Handbook",     "Guide",  "Cookbook",  "Field Guide",
                              "Workbook",     "Atlas",  "Companion", "Primer",
                              "Encyclopedia", "Reader", NULL};
static words_t books_uses = {"curious beginners", "readers who learn by doing",
                             "long evenings at home", "students and teachers", NULL};
static words_t books_features = {
    "Clear chapters build up from the basics to expert technique.",
    "Hundreds of colour photographs illustrate every step.",
    "It is written by practitioners with decades of experience in %m.",
    "Each chapter ends with exercises and a short summary.",
    "An index and a glossary make this %n easy to consult.",
    NULL,
};
static words_t books_tags = {"paperback", "hardcover", "ebook",       "bestseller",
                             "beginner",  "reference", "illustrated", "non-fiction",
                             "hobby",     "gift",      NULL};

static words_t garden_materials = {"Steel",      "Galvanised Steel", "Cedar",
                                   "Terracotta", "Recycled Plastic", "Teak",
                                   "Aluminium",  "Rubber",           NULL};
static words_t garden_nouns = {
    "Pruning Shears", "Garden Hose",   "Watering Can",   "Raised Bed",  "Wheelbarrow",
    "Leaf Rake",      "Planter",       "Trowel",         "Compost Bin", "Bird Feeder",
    "Lawn Sprinkler", "Hedge Trimmer", "Garden Kneeler", NULL,
};
static words_t garden_uses = {"balcony gardens", "allotments and backyards", "spring planting",
                              "keeping the lawn tidy", NULL};
static words_t garden_features = {
    "Weather-resistant %m stands up to rain and frost.",
    "A comfortable grip reduces strain during long sessions.",
    "It assembles in minutes without tools.",
    "It is built for years of use in every season.",
    "Gardeners praise this %n for its reliability.",
    NULL,
};
static words_t garden_tags = {
    "outdoor",  "weatherproof", "eco-friendly", "organic",        "lawn", "planting",
    "watering", "tools",        "patio",        "rust-resistant", NULL};

static words_t toys_materials = {"Wooden",           "Plush", "Magnetic", "Recycled", "Rainbow",
                                 "Glow-in-the-Dark", "Felt",  "Tin",      NULL};
static words_t toys_nouns = {
    "Building Blocks", "Puzzle",        "Teddy Bear", "Train Set",      "Kite",
    "Board Game",      "Doll House",    "Race Car",   "Stacking Rings", "Marble Run",
    "Robot Kit",       "Jigsaw Puzzle", NULL};
static words_t toys_uses = {"rainy afternoons", "curious young minds", "family game nights",
                            "birthday surprises", NULL};
static words_t toys_features = {
    "It is tested to meet EU toy safety standards.",
    "Non-toxic paints and rounded edges keep little hands safe.",
    "It encourages creativity, problem solving and fine motor skills.",
    "Everything packs back into a sturdy storage box.",
    "Kids and parents alike love this %n.",
    NULL,
};
static words_t toys_tags = {"ages-3-plus", "ages-8-plus", "educational", "stem",
                            "wooden",      "family",      "outdoor",     "creative",
                            "gift",        "montessori",  NULL};

static words_t sports_materials = {"Carbon",   "Steel",    "Neoprene", "Cork",  "Mesh",
                                   "Graphite", "Titanium", "Rubber",   "Nylon", NULL};
static words_t sports_nouns = {
    "Yoga Mat",         "Running Shoes",
    "Dumbbell Set",     "Tennis Racket",
    "Water Bottle",     "Jump Rope",
    "Football",         "Cycling Helmet",
    "Resistance Bands", "Hiking Backpack",
    "Foam Roller",      "Climbing Harness",
    "Swim Goggles",     NULL,
};
static words_t sports_uses = {"daily training", "weekend hikes", "home workouts",
                              "competition season", NULL};
static words_t sports_features = {
    "Lightweight %m keeps you fast and agile.",
    "It was designed with athletes and coaches.",
    "Breathable materials keep you cool under pressure.",
    "It is built to survive thousands of sessions.",
    "A grippy finish gives confidence in wet conditions.",
    NULL,
};
static words_t sports_tags = {"fitness",    "running",     "yoga",     "cycling",
                              "outdoor",    "training",    "hiking",   "lightweight",
                              "breathable", "team-sports", "strength", NULL};

static words_t clothing_materials = {
    "Cotton", "Organic Cotton",     "Merino",   "Linen",    "Denim",
    "Fleece", "Recycled Polyester", "Cashmere", "Corduroy", NULL};
static words_t clothing_nouns = {"Rain Jacket", "Hoodie",    "T-Shirt", "Chinos", "Sweater",
                                 "Shirt",       "Scarf",     "Beanie",  "Vest",   "Parka",
                                 "Socks",       "Overshirt", NULL};
static words_t clothing_uses = {"city commutes", "cold winter mornings", "travel and weekends",
                                "layering in any season", NULL};
static words_t clothing_features = {
    "Soft %m feels great against the skin.",
    "It is machine washable at 30 degrees.",
    "Reinforced seams keep its shape wash after wash.",
    "It is cut for a relaxed, comfortable fit.",
    "This %n is ethically made in audited factories.",
    NULL,
};
static words_t clothing_tags = {"organic",     "unisex",           "waterproof", "windproof",
                                "slim-fit",    "casual",           "winter",     "summer",
                                "sustainable", "machine-washable", NULL};

static words_t beauty_materials = {"Argan", "Aloe Vera", "Shea Butter", "Charcoal", "Lavender",
                                   "Rose",  "Coconut",   "Vitamin C",   NULL};
static words_t beauty_nouns = {
    "Face Cream", "Shampoo",    "Lip Balm",  "Hair Dryer",       "Body Lotion", "Serum",
    "Soap Bar",   "Hand Cream", "Beard Oil", "Makeup Brush Set", "Sunscreen",   NULL};
static words_t beauty_uses = {"sensitive skin", "daily self-care", "dry winter skin",
                              "your travel bag", NULL};
static words_t beauty_features = {
    "It is enriched with %m for lasting comfort.",
    "Dermatologically tested and free of parabens.",
    "A little goes a long way: one %n lasts for months.",
    "The vegan formula is never tested on animals.",
    "It absorbs quickly without a greasy feel.",
    NULL,
};
static words_t beauty_tags = {"vegan",
                              "cruelty-free",
                              "organic",
                              "sensitive-skin",
                              "fragrance-free",
                              "natural",
                              "travel-size",
                              "moisturising",
                              "spf",
                              NULL};

static words_t home_materials = {"Oak",   "Linen", "Velvet",  "Rattan", "Marble",
                                 "Brass", "Wool",  "Ceramic", "Pine",   NULL};
static words_t home_nouns = {
    "Table Lamp", "Throw Blanket", "Cushion",        "Wall Clock", "Bookshelf", "Rug", "Candle",
    "Vase",       "Picture Frame", "Storage Basket", "Mirror",     "Duvet",     NULL};
static words_t home_uses = {"cosy living rooms", "calm bedrooms", "small apartments",
                            "a warm welcome in the hallway", NULL};
static words_t home_features = {
    "Natural %m brings warmth to any room.",
    "Its minimalist lines suit modern and classic interiors.",
    "It is carefully finished by hand in small batches.",
    "It is easy to assemble and built to last for years.",
    "Guests always ask where you found this %n.",
    NULL,
};
static words_t home_tags = {"living-room", "bedroom", "scandinavian", "minimalist", "handmade",
                            "sustainable", "cosy",    "decor",        "storage",    NULL};

static words_t office_materials = {"Steel",  "Leather", "Bamboo", "Aluminium", "Recycled Paper",
                                   "Walnut", "Mesh",    "Brass",  NULL};
static words_t office_nouns = {"Desk Organizer", "Notebook",     "Fountain Pen", "Office Chair",
                               "Standing Desk",  "Desk Lamp",    "Stapler",      "Monitor Arm",
                               "Whiteboard",     "File Cabinet", "Planner",      NULL};
static words_t office_uses = {"long working days", "home offices", "students and writers",
                              "tidy meeting rooms", NULL};
static words_t office_features = {
    "An ergonomic design keeps you comfortable from nine to five.",
    "The %m finish looks sharp on any desk.",
    "It keeps cables, papers and pens in order.",
    "It is backed by a five-year guarantee.",
    "Remote workers call it the best %n they own.",
    NULL,
};
static words_t office_tags = {
    "ergonomic", "productivity", "stationery", "home-office", "adjustable",
    "recycled",  "minimalist",   "writing",    "storage",     NULL};

static words_t automotive_materials = {"Steel",   "Rubber",     "Carbon",        "Aluminium",
                                       "Leather", "Microfibre", "Polycarbonate", NULL};
static words_t automotive_nouns = {"Car Vacuum",    "Jump Starter",    "Phone Mount", "Dash Cam",
                                   "Tyre Inflator", "Seat Cover",      "Floor Mats",  "Roof Box",
                                   "Tool Kit",      "Headlight Bulbs", NULL};
static words_t automotive_uses = {"long road trips", "daily commutes", "roadside emergencies",
                                  "keeping the car spotless", NULL};
static words_t automotive_features = {
    "It fits almost every car, van and SUV.",
    "It plugs into any 12 V socket.",
    "Tough %m shrugs off heat, cold and vibration.",
    "It installs in minutes without tools.",
    "Drivers keep this %n in the boot for peace of mind.",
    NULL,
};
static words_t automotive_tags = {"car",      "12v", "safety",    "travel",    "universal-fit",
                                  "cleaning", "led", "emergency", "road-trip", NULL};

static words_t pets_materials = {"Plush", "Rope",  "Stainless Steel", "Bamboo", "Leather",
                                 "Nylon", "Sisal", "Ceramic",         NULL};
static words_t pets_nouns = {"Dog Bed",         "Cat Tree",    "Leash",    "Food Bowl",
                             "Scratching Post", "Pet Carrier", "Chew Toy", "Grooming Brush",
                             "Aquarium",        "Bird Cage",   "Collar",   NULL};
static words_t pets_uses = {"dogs of every size", "curious cats", "travel with pets",
                            "long walks in the park", NULL};
static words_t pets_features = {
    "Pets love its soft %m and sturdy build.",        "It is washable and easy to keep clean.",
    "A non-slip base stays put on any floor.",        "Vets recommend it for daily care.",
    "Your companion will not want to leave this %n.", NULL,
};
static words_t pets_tags = {"dog",      "cat",     "puppy",  "small-pets", "washable",
                            "non-slip", "durable", "travel", "grooming",   NULL};

/* Prices in cents: the floor and ceiling of each category (the draw skews towards the floor). */
static const struct category categories[CATALOG_CATEGORIES] = {
    {"electronics", NULL, electronics_materials, electronics_nouns, electronics_uses,
     electronics_features, electronics_tags, 999, 250000},
    {"kitchen", NULL, kitchen_materials, kitchen_nouns, kitchen_uses, kitchen_features,
     kitchen_tags, 499, 35000},
    {"books", book_adjectives, books_materials, books_nouns, books_uses, books_features, books_tags,
     499, 6999},
    {"garden", NULL, garden_materials, garden_nouns, garden_uses, garden_features, garden_tags, 299,
     60000},
    {"toys", NULL, toys_materials, toys_nouns, toys_uses, toys_features, toys_tags, 499, 15000},
    {"sports", NULL, sports_materials, sports_nouns, sports_uses, sports_features, sports_tags, 599,
     45000},
    {"clothing", NULL, clothing_materials, clothing_nouns, clothing_uses, clothing_features,
     clothing_tags, 999, 39900},
    {"beauty", NULL, beauty_materials, beauty_nouns, beauty_uses, beauty_features, beauty_tags, 299,
     12000},
    {"home", NULL, home_materials, home_nouns, home_uses, home_features, home_tags, 799, 120000},
    {"office", NULL, office_materials, office_nouns, office_uses, office_features, office_tags, 299,
     150000},
    {"automotive", NULL, automotive_materials, automotive_nouns, automotive_uses,
     automotive_features, automotive_tags, 999, 80000},
    {"pets", NULL, pets_materials, pets_nouns, pets_uses, pets_features, pets_tags, 299, 30000},
};

const char *const catalog_categories[CATALOG_CATEGORIES] = {
    "electronics", "kitchen", "books", "garden", "toys",       "sports",
    "clothing",    "beauty",  "home",  "office", "automotive", "pets",
};

/* Tags any product may carry on top of its category's. */
static words_t shared_tags = {"bestseller", "new", "sale", "limited-edition", NULL};
static words_t variants = {" XL", " Mini", ", 2-Pack", ", Set of 3", " Pro", " II", NULL};
static words_t openings = {"The %N is made for %u.", "Meet the %N, made for %u.",
                           "%N, built for %u.", NULL};
/* The last one is not ASCII on purpose: the catalog then exercises UTF-8 end to end. */
static words_t closings = {"Ships within two working days.", "Free returns within 30 days.",
                           "It pairs well with the rest of our %c range.",
                           "Designed in Malmö, made to last.", NULL};

/* ---- the random stream -------------------------------------------------------------------- */

/* splitmix64 (Steele, Lea and Flood, 2014): a fast, well-mixed 64-bit sequence, one add per
 * step, so a product's stream is a plain counter that needs no warm-up. */
static uint64_t next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The stream of product I: SEED and I each mixed, so that neighbouring seeds or indices start
 * far apart in the sequence. */
static uint64_t stream(uint64_t seed, uint64_t i)
{
    uint64_t a = seed, b = i ^ 0xD1B54A32D192ED03ULL, s;

    s = next(&a) ^ (next(&b) * 3);
    next(&s);
    return s;
}

/* A number below N (0 when N is 0). The modulo bias is below 2^-50 for our table sizes. */
static size_t below(uint64_t *st, size_t n)
{
    return n > 0 ? (size_t)(next(st) % n) : 0;
}

static size_t count_of(const char *const *w)
{
    size_t n = 0;

    while (w[n] != NULL)
        n++;
    return n;
}

static const char *pick(uint64_t *st, const char *const *w)
{
    return w[below(st, count_of(w))];
}

/* ---- text ----------------------------------------------------------------------------------- */

/* A bounded string under construction: appends past the end are dropped (the tables keep every
 * product far below the bounds; the test checks them). */
struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *s, bool lower)
{
    for (; *s != '\0' && t->len + 1 < t->cap; s++) {
        char c = *s;

        if (lower)
            c = (char)tolower((unsigned char)c);
        t->s[t->len++] = c;
    }
    t->s[t->len] = '\0';
}

struct words {
    const char *name, *adjective, *material, *noun, *use, *category;
};

/* Appends TEMPLATE with %N (the name), %n and %m (noun and material in lowercase), %u (a use)
 * and %c (the category) filled in. */
static void expand(struct text *t, const char *template, const struct words *w)
{
    for (const char *p = template; *p != '\0'; p++) {
        char one[2] = {*p, '\0'};

        if (*p != '%' || p[1] == '\0') {
            put(t, one, false);
            continue;
        }
        switch (*++p) {
        case 'N':
            put(t, w->name, false);
            break;
        case 'n':
            put(t, w->noun, true);
            break;
        case 'm':
            put(t, w->material, true);
            break;
        case 'u':
            put(t, w->use, false);
            break;
        case 'c':
            put(t, w->category, false);
            break;
        default:
            one[0] = *p;
            put(t, one, false);
        }
    }
}

/* ---- products ------------------------------------------------------------------------------- */

/* A uniform fraction in [0, 1) as a 16-bit integer numerator over 65536. */
static uint64_t frac16(uint64_t *st)
{
    return next(st) >> 48;
}

/* Cents between LO and HI, skewed towards LO: LO + (HI - LO) times the product of three uniform
 * fractions (mean 1/8), like a shop's price list where cheap items far outnumber dear ones.
 * Rounded to a shop's endings: .99 mostly, some .49 and some whole amounts. */
static int64_t price(uint64_t *st, int64_t lo, int64_t hi)
{
    uint64_t f = frac16(st) * frac16(st) * frac16(st); /* < 2^48 */
    int64_t p = lo + (int64_t)(((uint64_t)(hi - lo) * (f >> 24)) >> 24);
    size_t ending = below(st, 10);

    p = p / 100 * 100 + (ending < 7 ? 99 : ending < 9 ? 49 : 0);
    if (p < lo)
        p = lo;
    if (p > hi)
        p = hi;
    return p;
}

/* About one in ten out of stock; otherwise 1 to 500, most of them low. */
static int64_t stock(uint64_t *st)
{
    if (below(st, 10) == 0)
        return 0;
    return 1 + (int64_t)((frac16(st) * frac16(st) * CATALOG_STOCK_MAX) >> 32);
}

static const char *currency(uint64_t *st)
{
    size_t r = below(st, 100);

    return r < 80 ? "EUR" : r < 92 ? "USD" : "GBP";
}

/* Up to MAX distinct entries of W into OUT (a partial Fisher-Yates shuffle of their indices). */
static size_t pick_distinct(uint64_t *st, const char *const *w, size_t want, const char **out)
{
    size_t n = count_of(w), idx[32];

    if (n > N_OF(idx))
        n = N_OF(idx);
    if (want > n)
        want = n;
    for (size_t k = 0; k < n; k++)
        idx[k] = k;
    for (size_t k = 0; k < want; k++) {
        size_t j = k + below(st, n - k), tmp = idx[k];

        idx[k] = idx[j];
        idx[j] = tmp;
        out[k] = w[idx[k]];
    }
    return want;
}

void catalog_product(uint64_t seed, uint64_t i, struct catalog_product *out)
{
    uint64_t st = stream(seed, i);
    const struct category *c = &categories[below(&st, N_OF(categories))];
    const char *features[8] = {0};
    struct words w;
    struct text t;
    size_t nfeat;

    memset(out, 0, sizeof(*out));
    snprintf(out->sku, sizeof(out->sku), "SKU-%" PRIu64 "-%08" PRIu64, seed, i);
    out->category = c->name;

    w.adjective = pick(&st, c->adjectives != NULL ? c->adjectives : shared_adjectives);
    w.material = pick(&st, c->materials);
    w.noun = pick(&st, c->nouns);
    w.use = pick(&st, c->uses);
    w.category = c->name;
    t = (struct text){out->name, 0, sizeof(out->name)};
    put(&t, w.adjective, false);
    put(&t, " ", false);
    put(&t, w.material, false);
    put(&t, " ", false);
    put(&t, w.noun, false);
    if (below(&st, 100) < 15)
        put(&t, pick(&st, variants), false);
    w.name = out->name;

    /* An opening that holds the whole name, one to three of the category's features, and now
     * and then a closing: 2 to 5 sentences. */
    t = (struct text){out->description, 0, sizeof(out->description)};
    expand(&t, pick(&st, openings), &w);
    nfeat = pick_distinct(&st, c->features, 1 + below(&st, 3), features);
    for (size_t k = 0; k < nfeat; k++) {
        put(&t, " ", false);
        expand(&t, features[k], &w);
    }
    if (below(&st, 2) == 0) {
        put(&t, " ", false);
        expand(&t, pick(&st, closings), &w);
    }

    out->ntags = pick_distinct(&st, c->tags, 1 + below(&st, 5), out->tags);
    if (below(&st, 5) == 0) {
        const char *extra = pick(&st, shared_tags);
        bool have = false;

        /* "bestseller" is also a books tag: a tag is listed once. */
        for (size_t k = 0; k < out->ntags; k++)
            have = have || strcmp(out->tags[k], extra) == 0;
        if (!have)
            out->tags[out->ntags++] = extra;
    }

    out->price_cents = price(&st, c->price_lo, c->price_hi);
    out->currency = currency(&st);
    out->stock = stock(&st);

    t = (struct text){out->image_url, 0, sizeof(out->image_url)};
    put(&t, "https://img.example.com/products/", false);
    put(&t, c->name, false);
    put(&t, "/", false);
    put(&t, out->sku, true);
    put(&t, ".jpg", false);
}

json_t *catalog_product_json(const struct catalog_product *p)
{
    json_t *tags = json_array();

    if (tags == NULL)
        return NULL;
    for (size_t k = 0; k < p->ntags; k++) {
        if (json_array_append_new(tags, json_string(p->tags[k])) != 0) {
            json_decref(tags);
            return NULL;
        }
    }
    /* "o" hands TAGS over to the object, also when json_pack fails. */
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:I, s:s}", "sku", p->sku, "name",
                     p->name, "description", p->description, "category", p->category, "tags", tags,
                     "price_cents", (json_int_t)p->price_cents, "currency", p->currency, "stock",
                     (json_int_t)p->stock, "image_url", p->image_url);
}
