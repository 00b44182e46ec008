"""A labelled search-quality set for the index: twenty documents on distinct subjects in four formats
(PDF drawn with reportlab, DOCX with python-docx, HTML, Markdown), twelve near misses on neighbouring
subjects, a hundred unrelated PDFs around them, and twenty questions that each paraphrase what one
document says (with the page that says it, for the PDFs). Used by the index tests and by
bench/bench_index.py; everything is made up for batchdesk and generated the same on every run."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

# (file, title, author, created, [(heading, text), ...]); a PDF puts each section on a page of its own.
DOCUMENTS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("bread/sourdough-guide.pdf", "Baking with a sourdough starter", "Marta Keller", "2021-03-14", [
        ("Feeding the starter", "Keep the starter in a glass jar and feed it equal weights of flour and water every "
         "day. A healthy culture doubles within six hours and smells pleasantly sour."),
        ("Bulk fermentation and proofing", "After mixing, let the dough ferment at room temperature for four to "
         "six hours, folding it every half hour during the first two hours. Shape the loaf, then proof it "
         "overnight in the fridge; it is ready for the oven when a floured finger leaves a slow dent."),
        ("Baking", "Bake in a preheated cast iron pot at 250 degrees with the lid on for twenty minutes, then "
         "uncovered until the crust is deep brown.")]),
    ("house/heat-pump-maintenance.pdf", "Air source heat pump: care and servicing", "Nordwind Heating", "2022-09-01", [
        ("How the system works", "An air source heat pump extracts warmth from outside air and moves it into the "
         "radiators and the hot water cylinder, even when it is freezing outdoors."),
        ("Servicing the outdoor unit", "Twice a year clear leaves and snow away from the outdoor unit, rinse the "
         "evaporator fins gently, and check that the condensate drain is not blocked. A qualified engineer should "
         "check the refrigerant pressure every two years.")]),
    ("hr/travel-expenses.pdf", "Travel expense policy", "Human Resources", "2020-01-20", [
        ("Scope", "This policy applies to every employee who travels on company business."),
        ("Reimbursement", "Taxi and train fares, hotel nights and meals during business trips are reimbursed when "
         "the original receipts are submitted within thirty days. Alcohol, minibar charges and fines are never "
         "refunded. Claims go to your manager for approval.")]),
    ("farm/beekeeping-spring.pdf", "Beekeeping in spring", "Valley Apiary Club", "2019-04-02", [
        ("Swarm prevention", "In April and May a strong colony prepares to swarm: half the bees leave the hive with "
         "the old queen. Inspect every seven days for queen cells, give the colony more room with an extra "
         "super, and split crowded colonies into a nucleus hive.")]),
    ("it/backup-procedure.pdf", "Data backup procedure", "IT Operations", "2023-06-30", [
        ("The 3-2-1 rule", "Keep three copies of all company data on two different kinds of storage, with one copy "
         "off site, for example in another office or a cloud bucket."),
        ("Restore tests", "Once a quarter restore a random folder from the off-site copy to prove the backups can be "
         "read; record the time it took.")]),
    ("hobby/bicycle-restoration.docx", "Restoring a vintage bicycle", "Tom Becker", "2018-07-11", [
        ("Frame", "Remove rust from the steel frame with fine steel wool and a little oil, or with a vinegar bath "
         "for badly corroded parts, then protect the tubes with wax."),
        ("Chain and gears", "Soak the chain in degreaser, measure its stretch, and replace it together with the "
         "freewheel when it is worn.")]),
    ("health/kidney-stones-diet.docx", "Diet to prevent kidney stones", "Dr. Ana Ruiz", "2021-11-05", [
        ("Drink enough", "Drinking two to three litres of water a day is the single best way to keep calcium "
         "deposits from forming in the kidneys and the urinary tract."),
        ("Foods to limit", "Limit foods high in oxalate such as spinach, rhubarb and nuts, cut down on salt and "
         "animal protein, and keep a normal amount of dietary calcium.")]),
    ("games/sicilian-defence.docx", "The Sicilian Defence", "Chess Club Notes", "2017-02-19", [
        ("Idea", "Against 1.e4 Black answers 1...c5, fighting for the centre from the side and aiming for an "
         "unbalanced position with winning chances for both players."),
        ("Main lines", "The Najdorf and the Dragon variations lead to sharp tactical battles, often with castling "
         "on opposite sides.")]),
    ("home/tenancy-agreement.docx", "Tenancy agreement: deposit and notice", "Lakeside Lettings", "2022-02-01", [
        ("Deposit", "The tenant pays a deposit of two months' rent, returned within fourteen days of the end of the "
         "tenancy less the cost of any damage."),
        ("Ending the tenancy", "The tenant must give the landlord written notice at least three months before "
         "moving out; the landlord must give six months' notice.")]),
    ("events/wedding-photography.docx", "Wedding photography checklist", "Studio Lumen", "2020-05-23", [
        ("Ceremony", "Photograph the arrival of the guests, the walk down the aisle, the exchange of rings and the "
         "first kiss, without flash inside the church."),
        ("Reception", "Capture the speeches, the cutting of the cake, the first dance and group portraits of both "
         "families before the light fades.")]),
    ("garden/tomato-blight.html", "Tomato blight", "Green Thumb Magazine", "2019-08-12", [
        ("Symptoms", "Late blight shows as brown patches on the leaves that spread fast in warm, wet weather; the "
         "fruit rots with firm brown areas."),
        ("What to do", "Remove infected leaves at once, water the soil rather than the foliage, and grow "
         "resistant varieties under cover next year.")]),
    ("science/volcanoes.html", "How volcanoes erupt", "Earth Science for Schools", "2016-10-03", [
        ("Magma", "Deep under the crust, rock melts into magma, which is lighter than the solid rock around it "
         "and rises through cracks."),
        ("Eruption", "When gas dissolved in the magma expands near the surface, pressure builds until the magma "
         "bursts out of the vent as lava, ash and gas.")]),
    ("music/ukulele-chords.html", "Your first ukulele chords", "Strum School", "2021-01-09", [
        ("Tuning", "A soprano ukulele has four nylon strings tuned G, C, E and A."),
        ("Chords", "Play C major with the ring finger on the third fret of the A string; for A minor put the "
         "middle finger on the second fret of the G string; F major needs two fingers.")]),
    ("sport/marathon-taper.html", "Marathon training: the taper", "City Runners", "2022-03-28", [
        ("Why taper", "In the last three weeks before a marathon, cut your weekly mileage to let the legs recover "
         "while keeping some pace work."),
        ("How much", "Run about eighty percent of your peak distance three weeks out, sixty percent two weeks out "
         "and forty percent in race week.")]),
    ("pets/aquarium-cycle.html", "The nitrogen cycle in a new aquarium", "Aqua Hobby", "2020-11-15", [
        ("New tank syndrome", "Fish die in a new aquarium because waste produces ammonia faster than the young "
         "filter bacteria can convert it."),
        ("Cycling the tank", "Run the filter for four to six weeks before adding fish, test for ammonia and "
         "nitrite, and change a quarter of the water every week.")]),
    ("dev/git-workflow.md", "Git branching workflow", "Platform Team", "2023-01-17", [
        ("Branches", "Create a feature branch from main for every change and keep it short-lived."),
        ("Rebasing", "Before opening a merge request, rebase your branch onto the latest main so that your "
         "commits are replayed on top of it, and resolve conflicts commit by commit.")]),
    ("health/first-aid-burns.md", "First aid for burns", "Red Cross Volunteers", "2018-12-04", [
        ("Cool the burn", "Hold a scald or burn under cool running water for twenty minutes; never use ice, butter "
         "or creams."),
        ("Cover and get help", "Cover it loosely with cling film and call for medical help if the burn is larger "
         "than the casualty's hand.")]),
    ("energy/solar-panels.md", "Solar panel output and shading", "SunWise", "2022-07-07", [
        ("Shading", "Even partial shade from a chimney or a tree on one panel can cut the output of the whole "
         "string, because the cells are wired in series."),
        ("Fixes", "Micro-inverters or power optimisers let each panel work on its own, and trimming the tree helps "
         "most.")]),
    ("admin/passport-renewal.md", "Renewing your passport", "Citizen Services", "2021-05-30", [
        ("When", "Apply for a new passport at least eight weeks before your old one expires or before you travel."),
        ("How", "Fill in the application form, attach two recent photographs and your expired passport, and pay "
         "the fee at the town hall.")]),
    ("garden/composting.md", "Composting kitchen scraps", "Green Thumb Magazine", "2017-04-21", [
        ("What goes in", "Vegetable peelings, coffee grounds, eggshells and cardboard turn into compost; meat and "
         "dairy do not belong in the heap."),
        ("Making good soil", "Turn the heap every few weeks and keep it as moist as a wrung-out sponge; after six "
         "months you have dark, crumbly soil for the garden.")]),
]

# Near misses: documents on neighbouring subjects, which a question must not land on.
DISTRACTORS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("bread/baguettes.docx", "Baguettes with fresh yeast", "Marta Keller", "2021-05-02", [
        ("Dough", "Mix flour, water, salt and fresh yeast, knead for ten minutes and let the dough rest for an "
         "hour in a warm kitchen."),
        ("Shaping", "Divide into three pieces, roll them into long thin sticks and score them diagonally.")]),
    ("house/gas-boiler.md", "Annual gas boiler check", "Nordwind Heating", "2022-10-10", [
        ("Safety", "A registered engineer checks the flue, the gas pressure and the carbon monoxide alarm once a "
         "year."),
        ("Pressure", "If the pressure gauge drops below one bar, top up the system with the filling loop.")]),
    ("hr/annual-leave.pdf", "Annual leave policy", "Human Resources", "2020-01-20", [
        ("Entitlement", "Full-time employees get twenty-five days of paid holiday a year plus public holidays."),
        ("Booking", "Request leave in the HR portal at least two weeks ahead; unused days expire in March.")]),
    ("farm/wasp-nests.html", "Dealing with wasp nests", "Valley Apiary Club", "2019-07-19", [
        ("Finding the nest", "Wasps build paper nests in sheds, lofts and hedges; watch where they fly at dusk."),
        ("Removal", "Leave removal to a pest controller; never block the entrance of an active nest.")]),
    ("it/password-policy.md", "Password policy", "IT Operations", "2023-02-14", [
        ("Length", "Passwords must have at least fourteen characters; a passphrase of four words is best."),
        ("Second factor", "Every account with access to company data uses a second factor.")]),
    ("hobby/motorcycle-oil.pdf", "Changing the oil of a motorcycle", "Tom Becker", "2018-09-02", [
        ("Draining", "Warm the engine, remove the drain plug and let the old oil run into a pan."),
        ("Refilling", "Fit a new filter, refill with the grade the manual names and check the level on the "
         "sight glass.")]),
    ("health/blood-sugar-diet.docx", "Eating to keep blood sugar steady", "Dr. Ana Ruiz", "2021-12-01", [
        ("Carbohydrates", "Choose whole grains and pulses, which release sugar slowly, and avoid sweet drinks."),
        ("Meals", "Eat regular meals with vegetables and protein so that glucose levels stay even.")]),
    ("games/draughts.html", "Rules of draughts", "Chess Club Notes", "2017-03-05", [
        ("Moves", "Pieces move diagonally forward one square and capture by jumping over an opponent's piece."),
        ("Kings", "A piece that reaches the far row becomes a king and may move backwards.")]),
    ("home/mortgage-repayment.md", "Repaying your mortgage early", "Lakeside Lettings", "2022-04-11", [
        ("Overpayments", "Most lenders allow overpayments of ten percent of the balance a year without a fee."),
        ("Remortgaging", "Compare fixed rates when your deal ends instead of moving to the standard variable "
         "rate.")]),
    ("garden/rose-pruning.pdf", "Pruning roses", "Green Thumb Magazine", "2019-02-20", [
        ("When", "Prune bush roses in late winter, cutting just above an outward-facing bud."),
        ("Black spot", "Black spot shows as dark marks on rose leaves; collect fallen leaves and mulch the bed.")]),
    ("sport/cycling-intervals.md", "Interval training on the bike", "City Runners", "2022-05-16", [
        ("Sessions", "Ride five blocks of four minutes hard with three minutes easy between them, twice a week."),
        ("Recovery", "Keep one day a week completely off the bike.")]),
    ("pets/puppy-training.docx", "Training a new puppy", "Aqua Hobby", "2020-09-09", [
        ("House training", "Take the puppy outside after every meal and nap, and praise it at once."),
        ("Commands", "Teach sit, stay and come with short sessions and small treats.")]),
]

# (question, the document it is about, the page that answers it for a PDF)
QUERIES: list[tuple[str, str, int | None]] = [
    ("how long should the dough rise before it goes in the oven", "bread/sourdough-guide.pdf", 2),
    ("looking after the outdoor unit that warms the house", "house/heat-pump-maintenance.pdf", 2),
    ("can I get my taxi fare back after a business trip", "hr/travel-expenses.pdf", 2),
    ("stopping honey bees from leaving the hive in April", "farm/beekeeping-spring.pdf", 1),
    ("keeping several copies of company files in different places", "it/backup-procedure.pdf", 1),
    ("getting corrosion off an old bike frame", "hobby/bicycle-restoration.docx", None),
    ("what to eat to avoid painful mineral deposits in the kidneys", "health/kidney-stones-diet.docx", None),
    ("black's sharpest reply when white opens with the king's pawn", "games/sicilian-defence.docx", None),
    ("how much warning a renter must give the landlord before leaving the flat", "home/tenancy-agreement.docx", None),
    ("which pictures to take during the ceremony and the party afterwards", "events/wedding-photography.docx", None),
    ("brown spots spreading on tomato leaves after rainy weather", "garden/tomato-blight.html", None),
    ("why molten rock comes out of a mountain", "science/volcanoes.html", None),
    ("finger positions for a small four-string guitar", "music/ukulele-chords.html", None),
    ("running less in the weeks before the big race", "sport/marathon-taper.html", None),
    ("fish keep dying in my new tank", "pets/aquarium-cycle.html", None),
    ("replaying my commits on top of the main line", "dev/git-workflow.md", None),
    ("what to do when someone is scalded by hot water", "health/first-aid-burns.md", None),
    ("my roof panels make less electricity when a tree blocks the sun", "energy/solar-panels.md", None),
    ("getting a new travel document when mine runs out", "admin/passport-renewal.md", None),
    ("turning vegetable peelings into garden soil", "garden/composting.md", None),
]

# Searches for a rare word or name the document uses (what a keyword index is good at, a static model less)
KEYWORD_QUERIES: list[tuple[str, str]] = [
    ("Najdorf Dragon", "games/sicilian-defence.docx"),
    ("condensate drain blocked", "house/heat-pump-maintenance.pdf"),
    ("oxalate", "health/kidney-stones-diet.docx"),
    ("micro-inverters optimisers", "energy/solar-panels.md"),
    ("filling loop", "house/gas-boiler.md"),
    ("nucleus colony", "farm/beekeeping-spring.pdf"),
    ("off site copy cloud bucket", "it/backup-procedure.pdf"),
    ("cling film", "health/first-aid-burns.md"),
    ("nitrite test", "pets/aquarium-cycle.html"),
    ("freewheel", "hobby/bicycle-restoration.docx"),
    ("minibar", "hr/travel-expenses.pdf"),
    ("sight glass", "hobby/motorcycle-oil.pdf"),
]

_FILLER_SUBJECTS = [
    ("Quarterly sales report", ["Revenue in region {r} grew by {n} percent against the previous quarter.",
                                "The {r} sales team closed {m} new accounts and renewed {k} contracts.",
                                "Margins stayed at {n} percent despite higher freight costs."]),
    ("Meeting minutes", ["The committee approved the budget line for item {m} after a short discussion.",
                         "{p} presented the schedule for the {r} office move; the vote was postponed.",
                         "Action: {p} to circulate the revised agenda before the next session on day {k}."]),
    ("League results", ["{r} United beat {r} Rovers {k} to {n} in front of {m} spectators.",
                        "The referee showed {k} yellow cards; {p} scored twice in the second half.",
                        "After round {k} the table leaders are {n} points clear."]),
    ("Warehouse inventory", ["Aisle {k} holds {m} pallets of packaging film and {n} boxes of labels.",
                             "Stock count for SKU {m}-{k} differs by {n} units from the system record.",
                             "Forklift {k} is due for its safety inspection in week {n}."]),
    ("Conference agenda", ["Session {k}: keynote by {p} on supply chain digitalisation, hall {r}.",
                           "Coffee break at {k}:30, followed by panel {n} on procurement standards.",
                           "Registration closes on day {k}; badges are collected at desk {n}."]),
    ("Train timetable notes", ["The {k}:{n}0 service to {r} Central stops at all stations.",
                               "Platform {k} is closed for resurfacing until the end of month {n}.",
                               "Weekend services run every {n} minutes between {r} and the airport."]),
    ("Furniture catalogue", ["Model {m} oak desk, {n}0 centimetres wide, available in {k} finishes.",
                             "The {r} chair range comes with a {k}-year warranty on the frame.",
                             "Delivery within {n} working days; assembly service costs extra."]),
    ("Museum exhibit notes", ["Room {k} shows ceramic vessels from the {r} collection, dated to century {n}.",
                              "The loan of item {m} from the {r} museum ends in month {k}.",
                              "Guided tours start every {n} minutes from the main staircase."]),
]
_REGIONS = ["Northfield", "Easton", "Westbury", "Southport", "Kingsbridge", "Ashford", "Milton", "Harbury"]
_PEOPLE = ["J. Novak", "L. Moreau", "K. Tanaka", "S. Okafor", "P. Lindqvist", "R. Costa", "D. Weber"]


def _filler_sections(rng: random.Random, index: int) -> tuple[str, list[tuple[str, str]]]:
    subject, templates = _FILLER_SUBJECTS[index % len(_FILLER_SUBJECTS)]
    sections = []
    for part in range(rng.randint(1, 3)):
        lines = [rng.choice(templates).format(r=rng.choice(_REGIONS), p=rng.choice(_PEOPLE), n=rng.randint(2, 60),
                                              m=rng.randint(100, 9999), k=rng.randint(1, 12)) for _ in range(8)]
        sections.append((f"{subject}, part {part + 1}", " ".join(lines)))
    return f"{subject} {index:03d}", sections


def write_pdf(path: Path, title: str, author: str, created: str, sections: list[tuple[str, str]]) -> None:
    """One section per page: heading, then the text wrapped to the page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=True)
    pdf.setTitle(title)
    pdf.setAuthor(author)
    pdf.setCreator("batchdesk tests")
    for heading, text in sections:
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(72, 770, heading)
        pdf.setFont("Helvetica", 11)
        y, line = 745, ""
        for word in text.split():
            if len(line) + len(word) > 85:
                pdf.drawString(72, y, line)
                y, line = y - 15, ""
            line = f"{line} {word}".strip()
        pdf.drawString(72, y, line)
        pdf.showPage()
    pdf.save()
    _ = created  # reportlab (invariant) writes a fixed date; the others keep theirs


def write_docx(path: Path, title: str, author: str, created: str, sections: list[tuple[str, str]]) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.author = author
    document.core_properties.created = dt.datetime.fromisoformat(created)
    document.add_heading(title, 0)
    for heading, text in sections:
        document.add_heading(heading, 1)
        document.add_paragraph(text)
    document.save(str(path))


def write_html(path: Path, title: str, author: str, created: str, sections: list[tuple[str, str]]) -> None:
    body = "".join(f"<h2>{heading}</h2><p>{text}</p>" for heading, text in sections)
    path.write_text(f'<!doctype html><html lang="en"><head><title>{title}</title><meta name="author" '
                    f'content="{author}"></head><body><h1>{title}</h1>{body}</body></html>', encoding="utf-8")


def write_md(path: Path, title: str, author: str, created: str, sections: list[tuple[str, str]]) -> None:
    body = "".join(f"## {heading}\n\n{text}\n\n" for heading, text in sections)
    path.write_text(f"---\ntitle: {title}\nauthor: {author}\ndate: {created}\n---\n\n# {title}\n\n{body}",
                    encoding="utf-8")


WRITERS = {".pdf": write_pdf, ".docx": write_docx, ".html": write_html, ".md": write_md}


def write_corpus(root: Path, fillers: int = 100, seed: int = 7) -> list[Path]:
    """The twenty documents, their near misses and ``fillers`` unrelated PDFs under ``root``; returns every
    path written."""
    written = []
    for rel, title, author, created, sections in DOCUMENTS + DISTRACTORS:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[path.suffix](path, title, author, created, sections)
        written.append(path)
    rng = random.Random(seed)
    for index in range(fillers):
        title, sections = _filler_sections(rng, index)
        path = root / "archive" / f"{index // 25:02d}" / f"record-{index:03d}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pdf(path, title, rng.choice(_PEOPLE), "2015-01-01", sections)
        written.append(path)
    return written
