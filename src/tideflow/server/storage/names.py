"""Readable generated run names such as ``crimson-otter``: an adjective and an animal."""

from __future__ import annotations

import random

__all__ = ["ADJECTIVES", "ANIMALS", "generate_name"]

ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "ancient", "arctic", "ardent", "azure", "balmy", "bold", "brave", "breezy",
    "bright", "brisk", "bronze", "calm", "candid", "cheerful", "clever", "cobalt", "cosmic", "crimson",
    "crisp", "curious", "daring", "dapper", "dazzling", "deft", "eager", "earnest", "electric", "emerald",
    "fearless", "fervent", "fiery", "flying", "fluffy", "frosty", "gallant", "gentle", "gilded", "glad",
    "golden", "graceful", "grand", "happy", "hardy", "hazel", "hidden", "humble", "icy", "indigo",
    "jade", "jolly", "jovial", "keen", "kind", "lively", "lucky", "lunar", "magenta", "mellow",
    "merry", "mighty", "misty", "modest", "nimble", "noble", "ochre", "olive", "opal", "patient",
    "plucky", "polar", "proud", "quick", "quiet", "radiant", "rapid", "rosy", "ruby", "rustic",
    "sandy", "scarlet", "serene", "shiny", "silent", "silver", "sleek", "smart", "snowy", "solar",
    "spry", "steady", "stellar", "stormy", "sturdy", "sunny", "swift", "tidal", "topaz", "vivid",
    "wandering", "warm", "wise", "witty", "zesty",
)  # fmt: skip

ANIMALS: tuple[str, ...] = (
    "albatross", "alpaca", "antelope", "armadillo", "badger", "barracuda", "beaver", "bison", "bobcat",
    "buffalo", "butterfly", "camel", "capybara", "caracal", "cardinal", "caribou", "chameleon", "cheetah",
    "chinchilla", "cobra", "condor", "cougar", "coyote", "crane", "crow", "dingo", "dolphin", "dove",
    "dragonfly", "eagle", "eel", "egret", "elk", "falcon", "ferret", "finch", "flamingo", "fox", "gazelle",
    "gecko", "gibbon", "giraffe", "gopher", "gorilla", "grouse", "hamster", "hare", "hawk", "hedgehog",
    "heron", "hippo", "hornet", "hyena", "ibex", "ibis", "iguana", "impala", "jackal", "jaguar", "jay",
    "kangaroo", "kestrel", "kingfisher", "koala", "lemur", "leopard", "lion", "llama", "lobster", "lynx",
    "macaw", "magpie", "manatee", "marmot", "meerkat", "mink", "mole", "mongoose", "moose", "narwhal",
    "newt", "ocelot", "octopus", "okapi", "orca", "osprey", "otter", "owl", "panda", "panther", "parrot",
    "pelican", "penguin", "puffin", "quail", "quokka", "rabbit", "raccoon", "raven", "reindeer", "salmon",
    "seal", "shark", "sparrow", "squid", "stork", "swan", "tapir", "tiger", "toucan", "turtle", "walrus",
    "weasel", "whale", "wolf", "wombat", "yak", "zebra",
)  # fmt: skip


# A private generator: names never touch the global ``random`` state that user code (and test
# tools such as Hypothesis, which flags foreign use of it) may rely on.
_RNG = random.Random()


def generate_name(rng: random.Random | None = None) -> str:
    """A random ``adjective-animal`` name (not unique: run ids identify runs)."""
    r = rng or _RNG
    return f"{r.choice(ADJECTIVES)}-{r.choice(ANIMALS)}"
