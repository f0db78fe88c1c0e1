"""Synthetic people, places and case narratives in Arabic, English, Macedonian and Albanian.

Faker supplies what it has right for a locale; where it has not, small curated lists do (checked
by hand against Faker 40): `sq_AL` gives English names and `ar_AA` (like `en_GB`) invents city
names by gluing words together ("West رمضانfort"), so Albanian names and the Arabic and Albanian
places are curated here. Narratives are per-locale sentence templates filled with these values.
Every value is invented; one seed gives the same people again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from faker import Faker

LOCALES: Final = ("ar", "en", "mk", "sq")
_FAKER_LOCALE: Final = {"ar": "ar_AA", "en": "en_GB", "mk": "mk_MK", "sq": "sq_AL"}

_SQ_GIVEN: Final = ("Arben", "Besnik", "Dritan", "Ermal", "Flamur", "Gentian", "Ilir", "Luan", "Valon", "Agron",
                    "Arta", "Blerta", "Drita", "Elira", "Fjolla", "Lirie", "Mimoza", "Teuta", "Vlora", "Zana")
_SQ_FAMILY: Final = ("Hoxha", "Krasniqi", "Berisha", "Shala", "Gashi", "Dervishi", "Leka", "Kelmendi",
                     "Rexhepi", "Ademi", "Bajrami", "Selmani", "Xhaferi", "Memeti", "Osmani")
_PLACES: Final = {
    "ar": ("طرابلس", "صيدا", "عكار", "زحلة", "إربد", "الزرقاء", "المفرق", "جرش", "السلط", "مادبا"),
    "sq": ("Tetovë", "Gostivar", "Kërçovë", "Strugë", "Dibër", "Kumanovë", "Çair", "Likovë", "Zhelinë", "Bogovinë"),
}
_NARRATIVES: Final = {
    "ar": (
        "أبلغ معلم في {place} أن {name} ينعزل عن زملائه ويشارك مقاطع تحريضية عبر الإنترنت.",
        "لاحظ الأخصائي الاجتماعي في {place} أن {name} يتحدث عن مجموعة تعده بالانتماء والمال.",
        "قالت عائلة {name} في {place} إنه يقضي الليل على منتديات مغلقة ويرفض الحديث معهم.",
    ),
    "en": (
        "A teacher in {place} reports that {name} has withdrawn from classmates and shares hateful clips online.",
        "The youth worker in {place} noticed {name} talking about a group that promises belonging and money.",
        "{name}'s family in {place} say the young person spends nights on closed forums and stopped talking to them.",
    ),
    "mk": (
        "Наставник во {place} пријави дека {name} се повлекува од соучениците и споделува содржини со говор на омраза.",
        "Младинскиот работник во {place} забележа дека {name} зборува за група што ветува припадност и пари.",
        "Семејството на {name} од {place} вели дека ноќите ги минува на затворени форуми и не разговара со нив.",
    ),
    "sq": (
        "Një mësues në {place} raporton se {name} është tërhequr nga shokët dhe shpërndan video urrejtjeje.",
        "Punonjësi rinor në {place} vuri re se {name} flet për një grup që i premton përkatësi dhe para.",
        "Familja e {name} në {place} thotë se i kalon netët në forume të mbyllura dhe nuk flet më me ta.",
    ),
}
_NOTES: Final = {
    "ar": "ملاحظة تدريبية: تم الاتصال بـ{name} في {place}؛ الخطوة التالية لقاء مع الأسرة.",
    "en": "Training note: contact made with {name} in {place}; next step a meeting with the family.",
    "mk": "Белешка за обука: воспоставен контакт со {name} во {place}; следен чекор средба со семејството.",
    "sq": "Shënim trajnimi: u vendos kontakt me {name} në {place}; hapi tjetër takim me familjen.",
}


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """An invented person of one locale, with a place they live in."""

    locale: str
    given_name: str
    family_name: str
    place: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Synthesizer:
    """Invented values per locale from one seed (the same seed, the same values)."""

    def __init__(self, seed: int) -> None:
        self._fakers: dict[str, Faker] = {}
        for offset, locale in enumerate(LOCALES):
            faker = Faker(_FAKER_LOCALE[locale])
            faker.seed_instance(seed * 10 + offset)
            self._fakers[locale] = faker

    def person(self, locale: str) -> SyntheticPerson:
        faker = self._fakers[locale]
        if locale == "sq":
            given, family = faker.random_element(_SQ_GIVEN), faker.random_element(_SQ_FAMILY)
        else:
            given, family = faker.first_name(), faker.last_name()
        return SyntheticPerson(locale, given, family, self.place(locale))

    def place(self, locale: str) -> str:
        faker = self._fakers[locale]
        curated = _PLACES.get(locale)
        return str(faker.random_element(curated)) if curated else str(faker.city())

    def narrative(self, person: SyntheticPerson) -> str:
        template = self._fakers[person.locale].random_element(_NARRATIVES[person.locale])
        return str(template).format(name=person.given_name, place=person.place)

    def note(self, person: SyntheticPerson) -> str:
        return _NOTES[person.locale].format(name=person.given_name, place=person.place)

    def birth_date(self, locale: str) -> str:
        return self._fakers[locale].date_of_birth(minimum_age=13, maximum_age=24).isoformat()
