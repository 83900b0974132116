"""Natural, grammatical sentences from a small template grammar (English and Mandarin), offline.

Faker's lorem sentences are random word salad; a speech recognizer's language model penalises those even
when they are spoken perfectly, so intelligibility is judged on sentences people say. This grammar makes
them from common words: a subject, a verb phrase with an object or a place, optional time and manner.

    from omnitalker.data.sentences import SentenceGrammar
    grammar = SentenceGrammar("en")
    grammar.sentence(np.random.default_rng(0))   # e.g. "My brother reads a short book every morning."
"""

from __future__ import annotations

import numpy as np

EN_SUBJECTS = ("I", "We", "They", "You", "My brother", "My sister", "Our teacher", "The doctor", "Her friend",
               "The old man", "The children", "His mother", "The driver", "Your neighbor", "The little girl",
               "My father", "The students", "A young woman", "The farmer", "Our team")
EN_VERB_OBJECTS = ("read a short book", "drink a cup of tea", "walk the dog", "cook dinner", "clean the kitchen",
                   "watch the news", "play the piano", "write a long letter", "buy fresh bread",
                   "paint the old fence", "fix the broken chair", "visit the museum", "call their parents",
                   "open the window", "plant some flowers", "carry the heavy box", "find the lost key",
                   "sing a happy song", "wash the car", "feed the birds", "learn a new word",
                   "take the early train", "make some coffee", "answer the phone", "close the door")
EN_PLACES = ("at home", "in the garden", "near the river", "at the office", "in the city", "by the sea",
             "at school", "in the park", "on the farm", "at the station")
EN_TIMES = ("every morning", "in the evening", "on Sunday", "after lunch", "before dinner", "today",
            "last night", "this week", "at noon", "every day")
EN_OPENERS = ("I think", "Yesterday", "Sometimes", "Of course", "Usually", "Maybe", "Last year", "Every summer")
EN_QUESTION_WORDS = ("Why", "When", "Where", "How often")
EN_THIRD_PERSON = {"I": False, "We": False, "They": False, "You": False, "The children": False,
                   "The students": False}

ZH_SUBJECTS = ("我", "我们", "他们", "你", "我哥哥", "我妹妹", "老师", "医生", "她的朋友", "那位老人", "孩子们",
               "他妈妈", "司机", "邻居", "小女孩", "我爸爸", "学生们", "农民")
ZH_VERB_OBJECTS = ("看一本书", "喝一杯茶", "去公园散步", "做晚饭", "打扫厨房", "看新闻", "弹钢琴", "写一封信",
                   "买新鲜的面包", "修理椅子", "参观博物馆", "给父母打电话", "打开窗户", "种一些花", "找钥匙",
                   "唱一首歌", "洗车", "学习中文", "坐早上的火车", "喝咖啡", "关上门", "吃苹果", "听音乐")
ZH_TIMES = ("每天早上", "晚上", "星期天", "午饭以后", "今天", "昨天晚上", "这个星期", "中午", "每天", "明天")
ZH_PLACES = ("在家里", "在花园里", "在河边", "在办公室", "在城里", "在学校", "在公园里", "在火车站")
ZH_ENDINGS = ("。", "。", "。", "吗？", "，真好。", "，很高兴。")

GRAMMAR_WORDS = sorted({word.strip(",.?").lower() for phrase in (*EN_SUBJECTS, *EN_VERB_OBJECTS, *EN_PLACES,
                                                                 *EN_TIMES, *EN_OPENERS, *EN_QUESTION_WORDS)
                        for word in phrase.split()} | {"reads", "drinks", "does", "do", "did", "likes", "like",
                                                       "wants", "want", "to", "and", "then", "often"})


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _third_person(verb_phrase: str) -> str:
    verb, _, rest = verb_phrase.partition(" ")
    if verb.endswith(("sh", "ch", "s", "x")):
        verb += "es"
    elif verb.endswith("y") and verb[-2] not in "aeiou":
        verb = verb[:-1] + "ies"
    else:
        verb += "s"
    return f"{verb} {rest}".strip()


class SentenceGrammar:
    """Template sentences in ``lang`` ("en" or "zh"); deterministic for a given generator state."""

    def __init__(self, lang: str = "en"):
        if lang not in ("en", "zh"):
            raise ValueError(f"SentenceGrammar supports 'en' and 'zh', got {lang!r}")
        self.lang = lang

    def sentence(self, rng: np.random.Generator) -> str:
        return self._english(rng) if self.lang == "en" else self._chinese(rng)

    def _english(self, rng: np.random.Generator) -> str:
        subject, verb_phrase = _pick(rng, EN_SUBJECTS), _pick(rng, EN_VERB_OBJECTS)
        third = EN_THIRD_PERSON.get(subject, True)
        kind = int(rng.integers(5))
        if kind == 0:  # question
            aux = "does" if third else "do"
            subject_lower = subject if subject == "I" else subject[0].lower() + subject[1:]
            return f"{_pick(rng, EN_QUESTION_WORDS)} {aux} {subject_lower} {verb_phrase} {_pick(rng, EN_PLACES)}?"
        verb = _third_person(verb_phrase) if third else verb_phrase
        if kind == 1:  # wish
            wants = "wants" if third else "want"
            return f"{subject} {wants} to {verb_phrase} {_pick(rng, EN_TIMES)}."
        if kind == 2:  # two clauses
            other = _pick(rng, EN_VERB_OBJECTS)
            return f"{subject} {verb} and then {_third_person(other) if third else other}."
        if kind == 3:  # opener
            opener = _pick(rng, EN_OPENERS)
            subject_lower = subject if subject == "I" else subject[0].lower() + subject[1:]
            return f"{opener}, {subject_lower} {verb} {_pick(rng, EN_PLACES)}."
        return f"{subject} {verb} {_pick(rng, EN_PLACES)} {_pick(rng, EN_TIMES)}."

    def _chinese(self, rng: np.random.Generator) -> str:
        subject, verb_phrase = _pick(rng, ZH_SUBJECTS), _pick(rng, ZH_VERB_OBJECTS)
        kind = int(rng.integers(3))
        if kind == 0:
            return f"{_pick(rng, ZH_TIMES)}{subject}{_pick(rng, ZH_PLACES)}{verb_phrase}{_pick(rng, ZH_ENDINGS)}"
        if kind == 1:
            return f"{subject}想{verb_phrase}，然后{_pick(rng, ZH_VERB_OBJECTS)}。"
        return f"{subject}{_pick(rng, ZH_TIMES)}{verb_phrase}{_pick(rng, ZH_ENDINGS)}"
