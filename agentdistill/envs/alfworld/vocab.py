"""ALFRED vocabulary used by the game generator: rooms, receptacles, objects, affordances.

The facts (which object classes fit which receptacle class, which ones can be cleaned,
heated, cooled or toggled, which receptacles open) follow the ALFRED/ALFWorld object
tables, restricted to the classes that take part in the six ALFWorld task types. Room
recipes are ours: each gives receptacle classes with an instance-count range and the object
classes that may appear in that room.
"""

from __future__ import annotations

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

OPENABLE = frozenset({"Fridge", "Cabinet", "Microwave", "Drawer", "Safe"})

CLEANABLE = frozenset({
    "Apple", "Bowl", "ButterKnife", "Cloth", "Cup", "DishSponge", "Egg", "Fork", "Kettle",
    "Knife", "Ladle", "Lettuce", "Mug", "Pan", "Plate", "Pot", "Potato", "SoapBar", "Spatula",
    "Spoon", "Tomato",
})
HEATABLE = frozenset({"Apple", "Bread", "Cup", "Egg", "Mug", "Plate", "Potato", "Tomato"})
COOLABLE = frozenset({
    "Apple", "Bowl", "Bread", "Cup", "Egg", "Lettuce", "Mug", "Pan", "Plate", "Pot", "Potato",
    "Tomato", "WineBottle",
})
SLICEABLE = frozenset({"Apple", "Bread", "Egg", "Lettuce", "Potato", "Tomato"})
TOGGLEABLE = frozenset({"DeskLamp"})
#: Objects that stay where they are (lamps): present in the room, never picked up.
NOT_PICKUPABLE = frozenset({"DeskLamp"})

_TABLE_TOP = frozenset({
    "AlarmClock", "Apple", "Book", "Bowl", "Bread", "ButterKnife", "CD", "Candle", "CellPhone",
    "Cloth", "CreditCard", "Cup", "DishSponge", "Egg", "Fork", "Glassbottle", "HandTowel",
    "Kettle", "KeyChain", "Knife", "Ladle", "Laptop", "Lettuce", "Mug", "Newspaper", "Pan",
    "PaperTowel", "Pen", "Pencil", "PepperShaker", "Plate", "Pot", "Potato", "RemoteControl",
    "SaltShaker", "SoapBar", "SoapBottle", "Spatula", "Spoon", "SprayBottle", "Statue",
    "TissueBox", "ToiletPaper", "Tomato", "Vase", "Watch", "WineBottle",
})

#: receptacle class -> object classes it can contain (ALFRED's receptacle-object table).
CAN_CONTAIN: dict[str, frozenset[str]] = {
    "ArmChair": frozenset({"Book", "Box", "CellPhone", "Cloth", "CreditCard", "KeyChain",
                           "Laptop", "Newspaper", "Pillow", "RemoteControl"}),
    "BathtubBasin": frozenset({"Cloth", "DishSponge", "HandTowel", "SoapBar"}),
    "Bed": frozenset({"Book", "CellPhone", "Laptop", "Newspaper", "Pillow"}),
    "Cabinet": frozenset({"Book", "Bowl", "CD", "Candle", "Cloth", "Cup", "DishSponge",
                          "Glassbottle", "HandTowel", "Kettle", "Ladle", "Mug", "Newspaper",
                          "Pan", "PepperShaker", "Plate", "Pot", "SaltShaker", "SoapBar",
                          "SoapBottle", "SprayBottle", "TissueBox", "ToiletPaper", "Vase",
                          "WineBottle"}),
    "CoffeeMachine": frozenset({"Mug"}),
    "CoffeeTable": _TABLE_TOP,
    "CounterTop": _TABLE_TOP,
    "Desk": frozenset({"AlarmClock", "Book", "Bowl", "CD", "Candle", "CellPhone", "Cloth",
                       "CreditCard", "Cup", "Glassbottle", "KeyChain", "Laptop", "Mug",
                       "Newspaper", "Pen", "Pencil", "Plate", "RemoteControl", "SoapBottle",
                       "SprayBottle", "Statue", "TissueBox", "ToiletPaper", "Vase", "Watch",
                       "WineBottle"}),
    "DiningTable": _TABLE_TOP,
    "Drawer": frozenset({"Book", "ButterKnife", "CD", "Candle", "CellPhone", "Cloth",
                         "CreditCard", "DishSponge", "Fork", "HandTowel", "KeyChain", "Knife",
                         "Ladle", "Newspaper", "Pen", "Pencil", "PepperShaker", "RemoteControl",
                         "SaltShaker", "SoapBar", "SoapBottle", "Spatula", "Spoon",
                         "SprayBottle", "TissueBox", "ToiletPaper", "Watch"}),
    "Dresser": frozenset({"AlarmClock", "Book", "Bowl", "CD", "Candle", "CellPhone", "Cloth",
                          "CreditCard", "Cup", "Glassbottle", "KeyChain", "Laptop", "Mug",
                          "Newspaper", "Pen", "Pencil", "Plate", "RemoteControl",
                          "SprayBottle", "Statue", "TissueBox", "ToiletPaper", "Vase", "Watch",
                          "WineBottle"}),
    "Fridge": frozenset({"Apple", "Bowl", "Bread", "Cup", "Egg", "Glassbottle", "Lettuce",
                         "Mug", "Pan", "Plate", "Pot", "Potato", "Tomato", "WineBottle"}),
    "GarbageCan": frozenset({"Apple", "Bread", "CD", "Cloth", "DishSponge", "Egg", "HandTowel",
                             "Lettuce", "Newspaper", "PaperTowel", "Pen", "Pencil", "Potato",
                             "SoapBar", "SoapBottle", "SprayBottle", "TissueBox", "ToiletPaper",
                             "Tomato", "WineBottle"}),
    "HandTowelHolder": frozenset({"HandTowel"}),
    "Microwave": frozenset({"Apple", "Bowl", "Bread", "Cup", "Egg", "Glassbottle", "Mug",
                            "Plate", "Potato", "Tomato"}),
    "Ottoman": frozenset({"Book", "Box", "CellPhone", "Cloth", "CreditCard", "KeyChain",
                          "Laptop", "Newspaper", "Pillow", "RemoteControl"}),
    "Safe": frozenset({"CD", "CellPhone", "CreditCard", "KeyChain", "Statue", "Vase", "Watch"}),
    "Shelf": frozenset({"AlarmClock", "Book", "Bowl", "CD", "Candle", "CellPhone", "Cloth",
                        "CreditCard", "Cup", "DishSponge", "Glassbottle", "HandTowel", "Kettle",
                        "KeyChain", "Mug", "Newspaper", "PaperTowel", "Pen", "Pencil",
                        "PepperShaker", "Plate", "Pot", "RemoteControl", "SaltShaker",
                        "SoapBar", "SoapBottle", "SprayBottle", "Statue", "TissueBox",
                        "ToiletPaper", "Vase", "Watch", "WineBottle"}),
    "SideTable": _TABLE_TOP,
    "SinkBasin": frozenset({"Apple", "Bowl", "ButterKnife", "Cloth", "Cup", "DishSponge",
                            "Egg", "Fork", "Glassbottle", "HandTowel", "Kettle", "Knife",
                            "Ladle", "Lettuce", "Mug", "Pan", "Plate", "Pot", "Potato",
                            "SoapBar", "Spatula", "Spoon", "Tomato"}),
    "Sofa": frozenset({"Book", "Box", "CellPhone", "Cloth", "CreditCard", "KeyChain", "Laptop",
                       "Newspaper", "Pillow", "RemoteControl"}),
    "StoveBurner": frozenset({"Kettle", "Pan", "Pot"}),
    "Toilet": frozenset({"Candle", "Cloth", "DishSponge", "HandTowel", "Newspaper",
                         "PaperTowel", "SoapBar", "SoapBottle", "SprayBottle", "TissueBox",
                         "ToiletPaper"}),
    "ToiletPaperHanger": frozenset({"ToiletPaper"}),
    "TVStand": frozenset({"TissueBox"}),
}

#: Where a lamp may stand (it is "in" that receptacle in ALFWorld's PDDL).
LAMP_RECEPTACLES = ("Desk", "SideTable", "Dresser")

#: Room recipes: receptacle class -> (min, max) instances, and the object classes of the room.
ROOMS: dict[str, dict] = {
    "kitchen": {
        "receptacles": {
            "Cabinet": (3, 9), "Drawer": (2, 6), "CounterTop": (1, 3), "Fridge": (1, 1),
            "Microwave": (1, 1), "SinkBasin": (1, 1), "StoveBurner": (2, 4),
            "CoffeeMachine": (1, 1), "GarbageCan": (1, 1), "Shelf": (0, 3),
            "DiningTable": (0, 1),
        },
        "objects": ("Apple", "Bowl", "Bread", "ButterKnife", "Cup", "DishSponge", "Egg", "Fork",
                    "Glassbottle", "Kettle", "Knife", "Ladle", "Lettuce", "Mug", "Pan",
                    "PepperShaker", "Plate", "Pot", "Potato", "SaltShaker", "SoapBottle",
                    "Spatula", "Spoon", "Tomato", "WineBottle"),
    },
    "livingroom": {
        "receptacles": {
            "Sofa": (1, 1), "ArmChair": (0, 2), "CoffeeTable": (1, 1), "SideTable": (1, 2),
            "Drawer": (0, 4), "Cabinet": (0, 4), "Shelf": (1, 5), "TVStand": (0, 1),
            "GarbageCan": (1, 1), "Dresser": (0, 1), "Ottoman": (0, 1), "Safe": (0, 1),
        },
        "objects": ("Book", "Bowl", "Box", "CellPhone", "CreditCard", "KeyChain", "Laptop",
                    "Newspaper", "Pillow", "RemoteControl", "Statue", "TissueBox", "Vase",
                    "Watch", "Plate", "Candle"),
        "lamp": True,
    },
    "bedroom": {
        "receptacles": {
            "Bed": (1, 1), "Desk": (0, 1), "SideTable": (1, 2), "Drawer": (2, 6),
            "Dresser": (0, 1), "Shelf": (1, 4), "GarbageCan": (1, 1), "ArmChair": (0, 1),
            "Safe": (0, 1),
        },
        "objects": ("AlarmClock", "Book", "Bowl", "CD", "CellPhone", "CreditCard", "KeyChain",
                    "Laptop", "Mug", "Pen", "Pencil", "Pillow", "Cloth", "Vase", "Watch"),
        "lamp": True,
    },
    "bathroom": {
        "receptacles": {
            "Toilet": (1, 1), "SinkBasin": (1, 2), "BathtubBasin": (0, 1), "Cabinet": (1, 4),
            "CounterTop": (1, 1), "Drawer": (0, 4), "GarbageCan": (1, 1),
            "HandTowelHolder": (0, 1), "ToiletPaperHanger": (1, 1), "Shelf": (0, 2),
        },
        "objects": ("Candle", "Cloth", "DishSponge", "HandTowel", "SoapBar", "SoapBottle",
                    "SprayBottle", "TissueBox", "ToiletPaper", "PaperTowel"),
    },
}

#: ALFRED ids of basins carry the fixture name first ("Sink|...|SinkBasin"); ALFWorld's
#: demangler turns them into "sinkbasin 1" / "bathtubbasin 1".
BASIN_FIXTURE = {"SinkBasin": "Sink", "BathtubBasin": "Bathtub"}

#: Task text templates (ALFWorld's templated goal descriptions).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "pick_and_place_simple": ("put a {obj} in {recep}", "put some {obj} on {recep}"),
    "look_at_obj_in_light": ("look at {obj} under the {toggle}",
                             "examine the {obj} with the {toggle}"),
    "pick_clean_then_place_in_recep": ("put a clean {obj} in {recep}",
                                       "clean some {obj} and put it in {recep}"),
    "pick_heat_then_place_in_recep": ("put a hot {obj} in {recep}",
                                      "heat some {obj} and put it in {recep}"),
    "pick_cool_then_place_in_recep": ("put a cool {obj} in {recep}",
                                      "cool some {obj} and put it in {recep}"),
    "pick_two_obj_and_place": ("put two {obj} in {recep}",
                               "find two {obj} and put them in {recep}"),
}
