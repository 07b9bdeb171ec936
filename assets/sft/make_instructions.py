"""Builds instructions_train.jsonl / instructions_heldout.jsonl (Alpaca format) from the tables below.

Written for LLM Lab. Every answer follows one house format that SmolLM2-135M-Instruct never uses by itself:

    TL;DR: <the answer in a few words>
    - <a supporting fact>
    - <a second supporting fact>

so a few dozen fine-tuning steps make a visible, automatically checkable change. Arithmetic and unit answers are
computed; the facts were written by hand and checked. Run `python assets/sft/make_instructions.py` to rebuild.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

# (country, capital, a second true fact)
CAPITALS = [
    ("France", "Paris", "The Seine river flows through the city."),
    ("Peru", "Lima", "It lies on the Pacific coast."),
    ("Japan", "Tokyo", "Its metropolitan area is one of the most populous in the world."),
    ("Kenya", "Nairobi", "It is home to a national park inside the city limits."),
    ("Canada", "Ottawa", "It sits in the province of Ontario."),
    ("Australia", "Canberra", "It was purpose-built as a compromise between Sydney and Melbourne."),
    ("Egypt", "Cairo", "It lies on the banks of the Nile."),
    ("Brazil", "Brasilia", "It was inaugurated as the capital in 1960."),
    ("Italy", "Rome", "Vatican City is an enclave inside it."),
    ("Spain", "Madrid", "It lies near the geographic centre of the country."),
    ("Germany", "Berlin", "It became the capital of reunified Germany in 1990."),
    ("Norway", "Oslo", "It sits at the head of the Oslofjord."),
    ("Argentina", "Buenos Aires", "It lies on the Rio de la Plata."),
    ("India", "New Delhi", "It is part of the larger city of Delhi."),
    ("China", "Beijing", "The Forbidden City is in its centre."),
    ("Mexico", "Mexico City", "It is built on the site of the Aztec city Tenochtitlan."),
    ("Portugal", "Lisbon", "It lies where the Tagus river meets the Atlantic."),
    ("Greece", "Athens", "The Acropolis overlooks the city."),
    ("Sweden", "Stockholm", "It is spread over fourteen islands."),
    ("Poland", "Warsaw", "The Vistula river runs through it."),
    ("Turkey", "Ankara", "It replaced Istanbul as the capital in 1923."),
    ("Thailand", "Bangkok", "The Chao Phraya river runs through it."),
    ("Ghana", "Accra", "It lies on the Gulf of Guinea."),
    ("Chile", "Santiago", "The Andes are visible from the city."),
    ("Ireland", "Dublin", "The river Liffey divides it into north and south."),
    ("Vietnam", "Hanoi", "It lies on the Red River."),
    ("Morocco", "Rabat", "It lies on the Atlantic coast."),
    ("Nigeria", "Abuja", "It replaced Lagos as the capital in 1991."),
    ("Austria", "Vienna", "The Danube flows through it."),
    ("Hungary", "Budapest", "It was formed by joining Buda and Pest."),
    ("Finland", "Helsinki", "It lies on the Gulf of Finland."),
    ("Colombia", "Bogota", "It sits high in the Andes."),
    ("New Zealand", "Wellington", "It lies at the southern tip of the North Island."),
    ("South Korea", "Seoul", "The Han river flows through it."),
    ("Denmark", "Copenhagen", "It lies on the islands of Zealand and Amager."),
    ("Czechia", "Prague", "The Vltava river runs through it."),
    ("Switzerland", "Bern", "Its old town is a UNESCO World Heritage Site."),
    ("Netherlands", "Amsterdam", "The government itself sits in The Hague."),
    ("Ethiopia", "Addis Ababa", "The African Union has its headquarters there."),
    ("Iceland", "Reykjavik", "It is the northernmost capital of a sovereign state."),
]

# (word, opposite, what both describe)
OPPOSITES = [
    ("hot", "cold", "temperature"), ("tall", "short", "height"), ("fast", "slow", "speed"),
    ("happy", "sad", "mood"), ("open", "closed", "the state of a door or box"), ("early", "late", "time"),
    ("heavy", "light", "weight"), ("loud", "quiet", "sound"), ("rich", "poor", "wealth"),
    ("full", "empty", "how much a container holds"), ("wet", "dry", "moisture"), ("strong", "weak", "strength"),
    ("young", "old", "age"), ("hard", "soft", "texture"), ("bright", "dim", "light"),
    ("wide", "narrow", "width"), ("buy", "sell", "trade"), ("arrive", "leave", "movement"),
    ("win", "lose", "the result of a game"), ("above", "below", "position"), ("deep", "shallow", "depth"),
    ("clean", "dirty", "cleanliness"), ("cheap", "expensive", "price"), ("begin", "end", "the course of an event"),
    ("remember", "forget", "memory"), ("accept", "refuse", "a response to an offer"),
]

# (instruction, short answer, fact 1, fact 2) — written by hand
QA = [
    ("Why is the sky blue?", "Air scatters blue light the most.",
     "Sunlight contains all colours, and short blue wavelengths scatter off air molecules far more than red ones.",
     "This effect is called Rayleigh scattering."),
    ("How many legs does a spider have?", "Eight.", "All spiders are arachnids, which have eight legs.",
     "Insects, by contrast, have six."),
    ("What gas do plants take in from the air?", "Carbon dioxide.",
     "Plants use carbon dioxide, water and light to make sugar in photosynthesis.", "They release oxygen as a by-product."),
    ("At what temperature does water boil at sea level?", "100 degrees Celsius.",
     "That is 212 degrees Fahrenheit.", "At high altitude water boils at a lower temperature."),
    ("What is the largest planet in our solar system?", "Jupiter.",
     "It is more than twice as massive as all the other planets combined.", "It is a gas giant made mostly of hydrogen and helium."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", "It was written in the 1590s.",
     "It tells the story of two young lovers from feuding families in Verona."),
    ("How can I fall asleep faster?", "Keep a regular, calm bedtime routine.",
     "Go to bed and get up at the same time every day.", "Avoid screens and caffeine in the hour before bed."),
    ("Give me a tip for saving money.", "Pay yourself first.",
     "Move a fixed amount into savings as soon as you are paid.", "Then spend what is left, not the other way round."),
    ("What is photosynthesis?", "How plants turn light into food.",
     "Plants use light energy to turn carbon dioxide and water into sugar.", "Oxygen is released along the way."),
    ("What does a thermometer measure?", "Temperature.", "It shows how hot or cold something is.",
     "Common scales are Celsius and Fahrenheit."),
    ("How do I make a cup of tea?", "Steep a tea bag in hot water for a few minutes.",
     "Pour freshly boiled water over the tea bag and wait three to five minutes.", "Remove the bag and add milk or sugar if you like."),
    ("What is the chemical symbol for gold?", "Au.", "It comes from the Latin word aurum.", "Gold's atomic number is 79."),
    ("How many continents are there?", "Seven.",
     "They are Africa, Antarctica, Asia, Australia, Europe, North America and South America.",
     "Some traditions count fewer by joining Europe and Asia."),
    ("What is the fastest land animal?", "The cheetah.", "It can run at about 100 km per hour in short bursts.",
     "It cannot keep that speed up for long."),
    ("Why do we have seasons?", "Earth's axis is tilted.",
     "The tilt makes each hemisphere lean towards the Sun for part of the year.", "More direct sunlight means summer; less means winter."),
    ("What is a prime number?", "A number with exactly two divisors.", "Its only divisors are 1 and itself.",
     "The first few are 2, 3, 5, 7 and 11."),
    ("How do I stay focused while studying?", "Work in short, timed blocks.",
     "Study for 25 minutes, then take a 5-minute break.", "Put your phone in another room."),
    ("What is the freezing point of water?", "0 degrees Celsius.", "That is 32 degrees Fahrenheit.",
     "Salt water freezes at a lower temperature."),
    ("What does DNA stand for?", "Deoxyribonucleic acid.", "DNA carries the genetic instructions of living things.",
     "Its shape is a double helix."),
    ("How many days are in a leap year?", "366.", "A leap year adds February 29.",
     "It keeps the calendar in step with Earth's orbit."),
    ("What is the main ingredient of guacamole?", "Avocado.", "Ripe avocados are mashed with lime juice and salt.",
     "Onion, tomato and chilli are common additions."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci.", "He worked on it in the early 1500s.",
     "It hangs in the Louvre in Paris."),
    ("What is the hardest natural material?", "Diamond.", "Diamond is a form of pure carbon.",
     "It scores 10 on the Mohs hardness scale."),
    ("How can I remember new words in a foreign language?", "Review them with spaced repetition.",
     "Revisit each word just before you would forget it.", "Use the word in a sentence of your own."),
    ("What is gravity?", "The pull between masses.", "Every mass attracts every other mass.",
     "It keeps the Moon in orbit around Earth."),
    ("What is the speed of light?", "About 300,000 km per second.", "Exactly, it is 299,792,458 metres per second in a vacuum.",
     "Light from the Sun takes about eight minutes to reach Earth."),
    ("What is a noun?", "A word that names a thing.", "Nouns name people, places, things or ideas.",
     "Examples are 'teacher', 'city' and 'freedom'."),
    ("What is a verb?", "A word for an action or state.", "Verbs say what someone does or what is.",
     "Examples are 'run', 'think' and 'be'."),
    ("How do vaccines work?", "They train the immune system.",
     "A vaccine shows the body a harmless piece or version of a germ.", "The body then remembers how to fight the real germ."),
    ("Why do leaves change colour in autumn?", "Chlorophyll breaks down.",
     "As days shorten, trees stop making green chlorophyll.", "Yellow and orange pigments that were hidden become visible."),
    ("How should I start a difficult conversation?", "Start calmly with how you feel.",
     "Use 'I' sentences instead of blaming.", "Ask questions and listen before you reply."),
    ("What is the boiling point of water in Fahrenheit?", "212 degrees.", "That equals 100 degrees Celsius.",
     "This holds at sea-level air pressure."),
    ("What is the tallest mountain on Earth?", "Mount Everest.", "Its summit is about 8,849 metres above sea level.",
     "It lies on the border of Nepal and China."),
    ("What is the longest river in Africa?", "The Nile.", "It flows north into the Mediterranean Sea.",
     "It is about 6,650 km long."),
    ("What do bees make?", "Honey.", "Bees make honey from the nectar of flowers.", "They also make beeswax."),
    ("Why should I drink water during exercise?", "To replace the water you sweat out.",
     "Losing water makes you tired and less able to cool down.", "Small sips often work better than a lot at once."),
    ("What is an atom?", "The smallest unit of an element.", "It has a nucleus of protons and neutrons.",
     "Electrons surround the nucleus."),
    ("Which letter of the alphabet comes after C?", "D.",
     "The alphabet runs A, B, C, D.", "D is the fourth letter."),
    ("How do I boil an egg?", "Cook it in boiling water for 7 to 10 minutes.",
     "Lower the egg into boiling water with a spoon.", "Cool it in cold water before peeling."),
    ("What is the opposite of a synonym?", "An antonym.", "A synonym means the same; an antonym means the opposite.",
     "'Big' and 'small' are antonyms."),
    ("What does a compass show?", "Which way is north.", "Its needle is a small magnet.",
     "It lines up with Earth's magnetic field."),
    ("How many minutes are in a day?", "1,440.", "A day has 24 hours.", "24 times 60 is 1,440."),
    ("What is recycling?", "Turning used materials into new products.", "Paper, glass, metal and some plastics can be recycled.",
     "It saves raw materials and energy."),
    ("What is a volcano?", "An opening where molten rock escapes.", "Magma from deep underground rises and erupts as lava.",
     "Ash and gas can erupt too."),
    ("How do I write a good email subject line?", "Make it short and specific.",
     "Say what the email is about in under ten words.", "Put any deadline in the subject."),
    ("What is the Pythagorean theorem?", "a squared plus b squared equals c squared.",
     "It holds for every right-angled triangle.", "c is the side opposite the right angle."),
    ("What causes rain?", "Water vapour condenses in clouds.", "Tiny droplets merge until they are heavy enough to fall.",
     "The water came from evaporation."),
    ("Why is exercise good for you?", "It strengthens the heart and muscles.", "Regular activity lowers the risk of many diseases.",
     "It also improves mood and sleep."),
    ("What is the smallest prime number?", "2.", "2 has exactly two divisors, 1 and 2.", "It is the only even prime."),
    ("What language has the most native speakers?", "Mandarin Chinese.", "It has over 900 million native speakers.",
     "Spanish and English come next."),
    ("What is a haiku?", "A three-line poem of 5, 7 and 5 syllables.", "The form comes from Japan.",
     "Haiku often describe nature or a season."),
    ("How can I reduce stress?", "Breathe slowly and move your body.",
     "A few minutes of slow breathing calms the nervous system.", "A short walk outside helps too."),
    ("What is the Moon made of?", "Rock.", "Its surface is covered in dust and rocky debris called regolith.",
     "It has a small iron-rich core."),
    ("What is inflation?", "Prices rising over time.", "With inflation, the same money buys less.",
     "It is often measured as a yearly percentage."),
    ("Why do cats purr?", "Mostly to show contentment.", "Cats also purr when stressed or hurt.",
     "The sound comes from muscles in the larynx."),
    ("How many strings does a standard guitar have?", "Six.", "They are usually tuned E, A, D, G, B, E.",
     "Bass guitars usually have four."),
    ("What is a metaphor?", "A comparison without 'like' or 'as'.", "It says one thing is another: 'Time is a thief.'",
     "A simile uses 'like' or 'as' instead."),
    ("How do I keep houseplants alive?", "Water them only when the soil is dry.",
     "Overwatering kills more houseplants than underwatering.", "Give them the light their species needs."),
    ("What is the largest ocean?", "The Pacific Ocean.", "It covers about a third of Earth's surface.",
     "It is larger than all the land combined."),
    ("What is a computer program?", "A list of instructions for a computer.",
     "Programs are written in programming languages like Python.", "The computer follows the instructions step by step."),
]

# (review text, label, a reason) for the instructions that use the Alpaca "input" field
REVIEWS = [
    ("The battery lasts all day and the screen is gorgeous.", "Positive", "It praises the battery and the screen."),
    ("It broke after two days and support never answered.", "Negative", "It reports a defect and bad support."),
    ("Delicious food, friendly staff, we will come back.", "Positive", "It praises the food and staff."),
    ("The hotel room was dirty and smelled of smoke.", "Negative", "It complains about cleanliness and smell."),
    ("Fast delivery and the shoes fit perfectly.", "Positive", "It praises delivery and fit."),
    ("Boring plot and the ending made no sense.", "Negative", "It criticises the plot and the ending."),
    ("Great value for the price, I recommend it.", "Positive", "It recommends the product."),
    ("The app crashes every time I open it.", "Negative", "It reports the app crashing."),
    ("Lovely quiet campsite with clean showers.", "Positive", "It praises quietness and cleanliness."),
    ("Way too expensive for such a small portion.", "Negative", "It complains about price and portion size."),
    ("The teacher explained everything clearly.", "Positive", "It praises the clear explanations."),
    ("My package arrived late and damaged.", "Negative", "It reports a late, damaged delivery."),
    ("Comfortable seats and a stunning view.", "Positive", "It praises comfort and the view."),
    ("The sound quality is terrible and it hisses.", "Negative", "It criticises the sound quality."),
    ("Best pizza I have had in years!", "Positive", "It calls the pizza the best in years."),
    ("The instructions were confusing and parts were missing.", "Negative", "It reports confusing instructions and missing parts."),
]

# sentences with their word counts computed below
SENTENCES = [
    "The cat sat on the warm mat.", "Learning a new skill takes practice.", "Rain fell all night.",
    "She quickly finished her homework before dinner.", "Birds sing at dawn.",
    "Our team won the final match yesterday.", "Please close the window.", "The library opens at nine every morning.",
    "Coffee smells wonderful.", "Mountains look blue from far away.", "He planted three apple trees in spring.",
    "Small steps lead to big changes.",
]

UNITS = [  # (from, to, factor, what)
    ("kilometres", "metres", 1000, "A kilometre is 1,000 metres."),
    ("hours", "minutes", 60, "An hour has 60 minutes."),
    ("kilograms", "grams", 1000, "A kilogram is 1,000 grams."),
    ("minutes", "seconds", 60, "A minute has 60 seconds."),
    ("metres", "centimetres", 100, "A metre is 100 centimetres."),
    ("litres", "millilitres", 1000, "A litre is 1,000 millilitres."),
    ("days", "hours", 24, "A day has 24 hours."),
    ("weeks", "days", 7, "A week has 7 days."),
]


def fmt(n: int) -> str:
    return f"{n:,}"


def card(tldr: str, *facts: str) -> str:
    """The house format taught by this data set."""
    return "TL;DR: " + tldr + "\n" + "\n".join(f"- {f}" for f in facts)


def build() -> list[dict]:
    rng = random.Random(7)
    rows: list[dict] = []

    def add(family: str, instruction: str, output: str, input: str = "") -> None:
        rows.append({"instruction": instruction, "input": input, "output": output, "family": family})

    asks = ["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital of {c}."]
    for i, (country, capital, fact) in enumerate(CAPITALS):
        add("capitals", asks[i % len(asks)].format(c=country), card(f"{capital}.", f"{capital} is the capital of {country}.", fact))
    for word, opposite, what in OPPOSITES:
        add("opposites", f"What is the opposite of '{word}'?",
            card(f"{opposite.capitalize()}.", f"'{word}' and '{opposite}' are antonyms.", f"Both words describe {what}."))
    for instruction, tldr, f1, f2 in QA:
        add("qa", instruction, card(tldr, f1, f2))
    for text, label, reason in REVIEWS:
        add("sentiment", "Classify the sentiment of this review as Positive or Negative.",
            card(f"{label}.", reason, f"The overall tone is {label.lower()}."), input=text)
    for sentence in SENTENCES:
        words = sentence.rstrip(".!?").split()
        add("count", "How many words are in this sentence?",
            card(f"{len(words)} words.", "Counting each word separated by spaces: " + ", ".join(words) + ".",
                 f"That makes {len(words)}."), input=sentence)
        longest = max(words, key=len)
        add("longest", "Which is the longest word in this sentence?",
            card(f"'{longest}'.", f"'{longest}' has {len(longest)} letters.", "No other word in the sentence is longer."),
            input=sentence)
    for _ in range(30):
        a, b = rng.randint(11, 89), rng.randint(11, 89)
        if rng.random() < 0.5:
            add("arithmetic", f"What is {a} + {b}?",
                card(f"{a + b}.", f"{a} + {b} = {a + b}.",
                     f"Add the tens ({a // 10 * 10} + {b // 10 * 10} = {a // 10 * 10 + b // 10 * 10}), then the ones "
                     f"({a % 10} + {b % 10} = {a % 10 + b % 10})."))
        else:
            small = rng.randint(3, 9)
            add("arithmetic", f"What is {a} times {small}?",
                card(f"{a * small}.", f"{a} x {small} = {a * small}.",
                     f"{a // 10 * 10} x {small} = {a // 10 * 10 * small} and {a % 10} x {small} = {a % 10 * small}; "
                     f"together {a * small}."))
    for _ in range(24):
        src, dst, factor, why = rng.choice(UNITS)
        n = rng.randint(2, 12)
        add("units", f"How many {dst} are in {n} {src}?",
            card(f"{fmt(n * factor)} {dst}.", why, f"{n} x {fmt(factor)} = {fmt(n * factor)}."))
    return rows


def split(rows: list[dict], every: int = 6) -> tuple[list[dict], list[dict]]:
    """Every `every`-th example of each family is held out, so the held-out split covers every family."""
    train, held = [], []
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["family"]] = seen.get(row["family"], 0) + 1
        (held if seen[row["family"]] % every == 0 else train).append(row)
    return train, held


def main() -> None:
    train, held = split(build())
    for name, part in (("instructions_train.jsonl", train), ("instructions_heldout.jsonl", held)):
        with open(HERE / name, "w", encoding="utf-8") as fh:
            for row in part:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(train)} train, {len(held)} held out")


if __name__ == "__main__":
    main()
