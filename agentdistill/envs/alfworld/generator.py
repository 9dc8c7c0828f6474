"""Procedural ALFWorld games in the official ``game.tw-pddl`` format.

Used when the official ALFWorld data (from ``alfworld-download``) is not on the machine.
A *layout* is a room: a room type (kitchen, living room, bedroom, bathroom) and its
receptacles (how many cabinets, drawers, ... each at its own location). A *game* is a
layout plus objects placed in compatible receptacles and one of the six ALFWorld tasks,
written as a PDDL problem against ALFWorld's own ``alfred.pddl`` domain and played with
ALFWorld's ``alfred.twl2`` grammar by TextWorld's PDDL engine, exactly like official games.

Everything is a pure function of integer seeds (``random.Random`` with string seeds, which
is stable across Python versions and platforms), so a (layout id, task type, game seed)
triple always gives the same file. Splits are by layout: ``valid_unseen`` layouts never
occur in ``train``; ``valid_seen`` reuses train layouts with fresh placements and tasks.

The package ships a compressed bundle of games built by :func:`build_bundle` (see
``python -m agentdistill.envs.alfworld.generator --help``); :func:`write_official_tree`
lays games out exactly like ``json_2.1.1/<split>/<task>/<trial>/`` for the official loader.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdistill.envs.alfworld import vocab

#: Games per task type in the shipped bundle.
BUNDLE_COUNTS = {"train": 40, "valid_seen": 10, "valid_unseen": 10}
#: Layout ids per split. valid_seen draws from the train layouts.
TRAIN_LAYOUTS = range(0, 32)
UNSEEN_LAYOUTS = range(1000, 1012)
ROOM_ORDER = ("kitchen", "livingroom", "bedroom", "bathroom")
#: Task types each room can host (the fixtures they need: sink, microwave, fridge, lamp).
ROOM_TASKS = {
    "kitchen": ("pick_and_place_simple", "pick_clean_then_place_in_recep",
                "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep",
                "pick_two_obj_and_place"),
    "livingroom": ("pick_and_place_simple", "look_at_obj_in_light", "pick_two_obj_and_place"),
    "bedroom": ("pick_and_place_simple", "look_at_obj_in_light", "pick_two_obj_and_place"),
    "bathroom": ("pick_and_place_simple", "pick_clean_then_place_in_recep",
                 "pick_two_obj_and_place"),
}
#: Fixture each state-changing task uses; the goal receptacle must be another class.
TASK_FIXTURE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
TASK_PROPERTY = {
    "pick_clean_then_place_in_recep": vocab.CLEANABLE,
    "pick_heat_then_place_in_recep": vocab.HEATABLE,
    "pick_cool_then_place_in_recep": vocab.COOLABLE,
}
#: Type constants that alfred.pddl names in preconditions; every problem must declare them.
DOMAIN_RTYPES = ("SinkBasin", "Microwave", "Fridge")
DOMAIN_OTYPES = ("Knife", "ButterKnife")


def mangle(alfred_id: str) -> str:
    """ALFRED id (``Apple|+01.20|-00.50|+00.90``) -> PDDL name, as ALFWorld's files spell it."""
    return (alfred_id.replace("|", "_bar_").replace("-", "_minus_")
            .replace("+", "_plus_").replace(".", "_dot_").replace(",", "_comma_"))


@dataclass
class Receptacle:
    cls: str
    pddl_id: str
    location: str


@dataclass
class Layout:
    layout_id: int
    room: str
    receptacles: list[Receptacle]
    start_location: str

    def of_class(self, cls: str) -> list[Receptacle]:
        return [r for r in self.receptacles if r.cls == cls]

    @property
    def classes(self) -> set[str]:
        return {r.cls for r in self.receptacles}


@dataclass
class GameSpec:
    """One generated game: layout, object placement, task; enough to write both files."""

    layout: Layout
    task_type: str
    seed: int
    object_target: str
    parent_target: str
    toggle_target: str
    task_desc: str
    objects: list[tuple[str, str, str]] = field(default_factory=list)  # (cls, id, recep id)

    @property
    def name(self) -> str:
        recep = self.toggle_target if self.task_type == "look_at_obj_in_light" else self.parent_target
        return f"{self.task_type}-{self.object_target}-None-{recep}-{self.layout.layout_id}"

    @property
    def trial(self) -> str:
        return f"trial_G{self.layout.layout_id:05d}_{self.seed:06d}"

    @property
    def game_id(self) -> str:
        return f"{self.name}/{self.trial}"


def _coord(rng: random.Random) -> str:
    return f"{rng.uniform(-4.0, 4.0):+06.2f}"


def _alfred_id(cls: str, rng: random.Random, used: set[str]) -> str:
    while True:
        xyz = "|".join(_coord(rng) for _ in range(3))
        fixture = vocab.BASIN_FIXTURE.get(cls)
        raw = f"{fixture}|{xyz}|{cls}" if fixture else f"{cls}|{xyz}"
        name = mangle(raw)
        if name not in used:
            used.add(name)
            return name


def make_layout(layout_id: int) -> Layout:
    """The room of ``layout_id``: room type cycles through ``ROOM_ORDER``; counts are seeded."""
    rng = random.Random(f"alfworld-layout-{layout_id}")
    room = ROOM_ORDER[layout_id % len(ROOM_ORDER)]
    recipe = vocab.ROOMS[room]
    used: set[str] = set()
    locations: set[str] = set()

    def new_location() -> str:
        while True:
            raw = f"loc|{rng.randint(-12, 12)}|{rng.randint(-12, 12)}|{rng.choice((0, 1, 2, 3))}|{rng.choice((30, 45, 60))}"
            name = mangle(raw)
            if name not in locations:
                locations.add(name)
                return name

    receptacles: list[Receptacle] = []
    for cls, (lo, hi) in sorted(recipe["receptacles"].items()):
        for _ in range(rng.randint(lo, hi)):
            receptacles.append(Receptacle(cls, _alfred_id(cls, rng, used), new_location()))
    if recipe.get("lamp") and not any(r.cls in vocab.LAMP_RECEPTACLES for r in receptacles):
        receptacles.append(Receptacle("SideTable", _alfred_id("SideTable", rng, used), new_location()))
    return Layout(layout_id, room, receptacles, new_location())


def _holders(layout: Layout, cls: str, exclude: set[str] = frozenset()) -> list[Receptacle]:
    return [r for r in layout.receptacles
            if cls in vocab.CAN_CONTAIN.get(r.cls, ()) and r.cls not in exclude]


def make_game(layout: Layout, task_type: str, seed: int) -> GameSpec | None:
    """A game of ``task_type`` in ``layout`` drawn with ``seed``; None if the room cannot host it."""
    if task_type not in ROOM_TASKS[layout.room]:
        return None
    rng = random.Random(f"alfworld-game-{layout.layout_id}-{task_type}-{seed}")
    room_objects = [c for c in vocab.ROOMS[layout.room]["objects"] if _holders(layout, c)]
    fixture = TASK_FIXTURE.get(task_type)
    wanted = TASK_PROPERTY.get(task_type)

    # Target object class and goal receptacle class.
    candidates = []
    for obj in room_objects:
        if wanted is not None and obj not in wanted:
            continue
        if task_type == "look_at_obj_in_light":
            candidates.append((obj, ""))
            continue
        for recep in sorted(layout.classes):
            if recep == fixture or obj not in vocab.CAN_CONTAIN.get(recep, ()):
                continue
            # The object must start somewhere else, so the goal is never true at reset.
            if not _holders(layout, obj, exclude={recep}):
                continue
            candidates.append((obj, recep))
    if not candidates:
        return None
    obj_cls, recep_cls = rng.choice(candidates)
    toggle = "DeskLamp" if task_type == "look_at_obj_in_light" else ""

    used = {r.pddl_id for r in layout.receptacles}
    objects: list[tuple[str, str, str]] = []
    # Target instances (two tasks need at least two), never inside a goal receptacle.
    n_target = rng.randint(2, 3) if task_type == "pick_two_obj_and_place" else rng.randint(1, 3)
    for _ in range(n_target):
        holder = rng.choice(_holders(layout, obj_cls, exclude={recep_cls}))
        objects.append((obj_cls, _alfred_id(obj_cls, rng, used), holder.pddl_id))
    if toggle:
        lamp_spots = [r for r in layout.receptacles if r.cls in vocab.LAMP_RECEPTACLES]
        objects.append((toggle, _alfred_id(toggle, rng, used), rng.choice(lamp_spots).pddl_id))
    # Distractors: other classes; none of the target class in a goal receptacle.
    others = [c for c in room_objects if c != obj_cls]
    for _ in range(rng.randint(6, 14)):
        cls = rng.choice(others)
        holder = rng.choice(_holders(layout, cls))
        objects.append((cls, _alfred_id(cls, rng, used), holder.pddl_id))

    template = rng.choice(vocab.TEMPLATES[task_type])
    task_desc = template.format(obj=obj_cls.lower(), recep=recep_cls.lower(), toggle=toggle.lower())
    return GameSpec(layout, task_type, seed, obj_cls, recep_cls, toggle, task_desc, objects)


def _goal(spec: GameSpec) -> str:
    o, r, t = spec.object_target, spec.parent_target, spec.toggle_target
    if spec.task_type == "look_at_obj_in_light":
        return f"""(and
            (exists (?ot - object ?r - receptacle ?a - agent ?l - location)
                (and (objectType ?ot {t}Type) (toggleable ?ot) (isToggled ?ot)
                     (receptacleAtLocation ?r ?l) (atLocation ?a ?l) (inReceptacle ?ot ?r)))
            (exists (?o - object ?a - agent)
                (and (objectType ?o {o}Type) (holds ?a ?o))))"""
    if spec.task_type == "pick_two_obj_and_place":
        return f"""(and
            (exists (?r - receptacle)
                (exists (?o1 - object)
                    (and (objectType ?o1 {o}Type) (receptacleType ?r {r}Type) (inReceptacle ?o1 ?r)
                         (exists (?o2 - object)
                             (and (not (= ?o1 ?o2)) (objectType ?o2 {o}Type)
                                  (receptacleType ?r {r}Type) (inReceptacle ?o2 ?r)))))))"""
    state = {
        "pick_clean_then_place_in_recep": "(cleanable ?o) (isClean ?o) ",
        "pick_heat_then_place_in_recep": "(heatable ?o) (isHot ?o) ",
        "pick_cool_then_place_in_recep": "(coolable ?o) (isCool ?o) ",
    }.get(spec.task_type, "")
    return f"""(and
            (exists (?r - receptacle)
                (exists (?o - object)
                    (and {state}(objectType ?o {o}Type) (receptacleType ?r {r}Type)
                         (inReceptacle ?o ?r)))))"""


def problem_pddl(spec: GameSpec) -> str:
    """The PDDL problem of ``spec`` against ALFWorld's ``alfred`` domain."""
    layout = spec.layout
    obj_classes = sorted({c for c, _, _ in spec.objects} | set(DOMAIN_OTYPES))
    rec_classes = sorted(layout.classes | set(DOMAIN_RTYPES))
    rec_loc = {r.pddl_id: r.location for r in layout.receptacles}
    lines = ["(define (problem plan_" + spec.trial.lower() + ")", "    (:domain alfred)", "    (:objects",
             "        agent1 - agent"]
    lines += [f"        {c}Type - otype" for c in obj_classes]
    lines += [f"        {c}Type - rtype" for c in rec_classes]
    lines += [f"        {oid} - object" for _, oid, _ in spec.objects]
    lines += [f"        {r.pddl_id} - receptacle" for r in layout.receptacles]
    lines += [f"        {loc} - location" for loc in sorted({layout.start_location, *rec_loc.values()})]
    lines += ["    )", "    (:init", "        (= (total-cost) 0)",
              f"        (atLocation agent1 {layout.start_location})"]
    for r in layout.receptacles:
        lines.append(f"        (receptacleAtLocation {r.pddl_id} {r.location})")
        lines.append(f"        (receptacleType {r.pddl_id} {r.cls}Type)")
        if r.cls in vocab.OPENABLE:
            lines.append(f"        (openable {r.pddl_id})")
    for cls, oid, rid in spec.objects:
        lines.append(f"        (objectType {oid} {cls}Type)")
        lines.append(f"        (inReceptacle {oid} {rid})")
        lines.append(f"        (objectAtLocation {oid} {rec_loc[rid]})")
        if cls not in vocab.NOT_PICKUPABLE:
            lines.append(f"        (pickupable {oid})")
        for prop, members in (("cleanable", vocab.CLEANABLE), ("heatable", vocab.HEATABLE),
                              ("coolable", vocab.COOLABLE), ("sliceable", vocab.SLICEABLE),
                              ("toggleable", vocab.TOGGLEABLE)):
            if cls in members:
                lines.append(f"        ({prop} {oid})")
    for rc in rec_classes:
        for oc in obj_classes:
            if oc in vocab.CAN_CONTAIN.get(rc, ()):
                lines.append(f"        (canContain {rc}Type {oc}Type)")
    lines += ["    )", "    (:goal", "        " + _goal(spec), "    )", ")", ""]
    return "\n".join(lines)


def traj_data(spec: GameSpec, split: str) -> dict[str, Any]:
    """The ``traj_data.json`` fields ALFWorld's loaders read (task type, targets, text)."""
    return {
        "task_id": spec.trial,
        "task_type": spec.task_type,
        "split": split,
        "pddl_params": {
            "object_target": spec.object_target,
            "parent_target": spec.parent_target,
            "toggle_target": spec.toggle_target,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"floor_plan": f"Generated_{spec.layout.room}_{spec.layout.layout_id}",
                  "scene_num": spec.layout.layout_id, "random_seed": spec.seed},
        "turk_annotations": {"anns": [{"task_desc": spec.task_desc[0].upper() + spec.task_desc[1:] + "."}]},
        "generator": "agentdistill",
    }


def game_file(spec: GameSpec, domain: str, grammar: str, walkthrough: list[str] | None) -> dict:
    """A ``game.tw-pddl`` payload (the JSON ALFWorld and TextWorld's PddlEnv load)."""
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", spec.task_desc),
        "pddl_problem": problem_pddl(spec),
        "solvable": walkthrough is not None,
        "walkthrough": walkthrough,
    }


def alfworld_logic() -> tuple[str, str]:
    """(alfred.pddl, alfred.twl2) text from the installed ``alfworld`` package.

    Located with ``find_spec`` so that ``alfworld/__init__`` (which creates its cache dir)
    is not executed.
    """
    import importlib.util

    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the ALFWorld environment needs the `alfworld` package for its PDDL domain and "
            "grammar: pip install 'agentdistill[alfworld]'"
        )
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def split_layouts(split: str) -> list[int]:
    return list(UNSEEN_LAYOUTS) if split == "valid_unseen" else list(TRAIN_LAYOUTS)


def generate_specs(split: str, task_type: str, count: int) -> list[GameSpec]:
    """``count`` games of ``task_type`` for ``split``, round-robin over the split's layouts.

    Train uses even game seeds and valid_seen odd ones, so the two never share a game.
    """
    layouts = [make_layout(i) for i in split_layouts(split)]
    layouts = [lay for lay in layouts if task_type in ROOM_TASKS[lay.room]]
    parity = 1 if split == "valid_seen" else 0
    specs: list[GameSpec] = []
    seed = parity
    while len(specs) < count:
        lay = layouts[(seed // 2) % len(layouts)]
        spec = make_game(lay, task_type, seed)
        if spec is not None:
            specs.append(spec)
        seed += 2
    return specs


def plan_game(payload: dict) -> list[str] | None:
    """Optimal plan of a game payload with TextWorld's planner, or None if unsolvable."""
    from agentdistill.envs.alfworld.engine import AlfredGame

    game = AlfredGame()
    game.load(payload)
    game.reset()
    plan = game.plan()
    if not plan:
        return None
    for command in plan:
        game.step(command)
    won = game.won
    game.close()
    return plan if won else None


def build_bundle(out: Path, counts: dict[str, int] | None = None, verify: bool = True,
                 log: bool = False, cache: Path | None = None, write: bool = True) -> dict:
    """Generate every split's games, verify each with the planner, write a gzipped bundle.

    ``cache`` (a JSONL file) keeps verified games across runs, so a build can be resumed
    or split over processes (one per split) and assembled by a last run.
    """
    counts = counts or BUNDLE_COUNTS
    domain, grammar = alfworld_logic()
    done: dict[str, dict] = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["split"] + "/" + rec["game_id"]] = rec
    games = []
    for split, per_type in counts.items():
        for task_type in vocab.TASK_TYPES:
            for spec in generate_specs(split, task_type, per_type):
                key = split + "/" + spec.game_id
                if key in done and done[key]["pddl_problem"] == problem_pddl(spec):
                    games.append(done[key])
                    continue
                if log:
                    print(f"{split} {spec.game_id}", flush=True)
                walkthrough = None
                if verify:
                    walkthrough = plan_game(game_file(spec, domain, grammar, []))
                    if walkthrough is None:
                        raise RuntimeError(f"generated game {spec.game_id} is not solvable")
                rec = {
                    "game_id": spec.game_id,
                    "split": split,
                    "task_type": spec.task_type,
                    "layout_id": spec.layout.layout_id,
                    "room": spec.layout.room,
                    "task_desc": spec.task_desc,
                    "pddl_problem": problem_pddl(spec),
                    "traj_data": traj_data(spec, split),
                    "walkthrough": walkthrough,
                }
                games.append(rec)
                if cache is not None:
                    with cache.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
    digest = hashlib.sha256(json.dumps([g["pddl_problem"] for g in games]).encode()).hexdigest()
    bundle = {"format": 1, "counts": counts, "sha256": digest, "games": games}
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(out, "wb", mtime=0) as f:
            f.write(json.dumps(bundle, sort_keys=True).encode())
    return bundle


def write_official_tree(root: Path, games: list[dict], domain: str, grammar: str) -> list[Path]:
    """Lay bundle games out like ``json_2.1.1/<split>/<name>/<trial>/{game.tw-pddl,traj_data.json}``."""
    paths = []
    for g in games:
        d = Path(root) / "json_2.1.1" / g["split"] / g["game_id"]
        d.mkdir(parents=True, exist_ok=True)
        payload = {
            "pddl_domain": domain,
            "grammar": grammar.replace("UNKNOWN GOAL", g["task_desc"]),
            "pddl_problem": g["pddl_problem"],
            "solvable": True,
            "walkthrough": g.get("walkthrough"),
        }
        (d / "game.tw-pddl").write_text(json.dumps(payload))
        (d / "traj_data.json").write_text(json.dumps(g["traj_data"]))
        paths.append(d / "game.tw-pddl")
    return paths


def main(argv: list[str] | None = None) -> None:
    """CLI: rebuild the shipped bundle (``--out``) or write an official-style tree (``--tree``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the gzipped bundle here")
    parser.add_argument("--tree", type=Path, help="also write a json_2.1.1 tree under this dir")
    parser.add_argument("--split", choices=tuple(BUNDLE_COUNTS), action="append",
                        help="only build (and cache) these splits; no bundle is written")
    parser.add_argument("--cache", type=Path, help="JSONL cache of verified games (resumable)")
    parser.add_argument("--no-verify", action="store_true", help="skip planner verification")
    args = parser.parse_args(argv)
    if args.out is None and args.tree is None:
        parser.error("give --out and/or --tree")
    out = args.out or (args.tree / "bundle.json.gz")
    counts = {s: BUNDLE_COUNTS[s] for s in args.split} if args.split else None
    bundle = build_bundle(out, counts=counts, verify=not args.no_verify, log=True,
                          cache=args.cache, write=not args.split)
    if args.split:
        print(f"built {len(bundle['games'])} games of {args.split} into {args.cache}")
        return
    print(f"wrote {len(bundle['games'])} games to {out} (sha256 {bundle['sha256'][:12]})")
    if args.tree is not None:
        domain, grammar = alfworld_logic()
        write_official_tree(args.tree, bundle["games"], domain, grammar)
        print(f"wrote official-style tree under {args.tree / 'json_2.1.1'}")


if __name__ == "__main__":
    main()
