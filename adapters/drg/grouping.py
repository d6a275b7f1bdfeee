"""What the simulated platform answers to the queries: the standard departments (标准科室), a
deterministic fake DRG grouping and a quality-control (质控) feedback row per front page. The
grouping only has to be stable and plausible for tests and dry runs; it is not the CHS-DRG
grouper."""

import re

from hub.base.json import Json

# 标准科室: 《医疗机构诊疗科目名录》 with the 医保 "A" prefix, as the settlement list uses them
STANDARD_DEPARTMENTS = {
    "A02": "全科医疗科",
    "A03": "内科",
    "A03.01": "呼吸内科专业",
    "A03.02": "消化内科专业",
    "A03.03": "神经内科专业",
    "A03.04": "心血管内科专业",
    "A03.05": "血液内科专业",
    "A03.06": "肾病学专业",
    "A03.07": "内分泌专业",
    "A04": "外科",
    "A04.01": "普通外科专业",
    "A04.02": "神经外科专业",
    "A04.03": "骨科专业",
    "A04.04": "泌尿外科专业",
    "A04.05": "胸外科专业",
    "A05": "妇产科",
    "A05.01": "妇科专业",
    "A05.02": "产科专业",
    "A07": "儿科",
    "A10": "眼科",
    "A11": "耳鼻咽喉科",
    "A12": "口腔科",
    "A13": "皮肤科",
    "A20": "急诊医学科",
    "A28": "重症医学科",
    "A50": "中医科",
}

# ICD-10 chapter letter -> CHS-DRG major diagnostic category (MDC) letter
MDC_BY_CHAPTER = {
    "A": "S",  # 感染
    "B": "S",
    "C": "R",  # 肿瘤
    "D": "Q",  # 血液
    "E": "K",  # 内分泌
    "F": "T",  # 精神
    "G": "B",  # 神经
    "H": "C",  # 眼
    "I": "F",  # 循环
    "J": "E",  # 呼吸
    "K": "G",  # 消化
    "L": "J",  # 皮肤
    "M": "I",  # 肌肉骨骼
    "N": "L",  # 泌尿
    "O": "O",  # 妊娠
    "P": "P",  # 新生儿
    "S": "V",  # 创伤
    "T": "V",
}
_UNSPECIFIED = re.compile(r"[A-Z]\d{2}\.9")  # 未特指: J18.9, J18.900


def _stay(main: Json) -> Json:
    return {name: main[name] for name in ("YBLSH", "ZYCS", "BAH")}


def group(main: Json) -> Json:
    """IN_DRG 1 (入组成功) and a DRG code from the main diagnosis: the MDC letter, ``B`` for a
    surgical case (an operation is coded) or ``S`` for a medical one, and the ICD category
    digits, e.g. J18.900 without an operation -> ``ES18``."""
    diagnosis = str(main["JBDM"])
    kind = "B" if main.get("SSJCZBM1") else "S"
    code = f"{MDC_BY_CHAPTER.get(diagnosis[0], 'X')}{kind}{diagnosis[1:3]}"
    return {**_stay(main), "IN_DRG": 1, "DRG_CODE": code, "ZYZD": main.get("JBDM")}


def quality_feedback(main: Json) -> Json:
    """One 质控 row per front page: an unspecified (.9) main diagnosis is flagged, the usual
    first finding of a coding review."""
    if _UNSPECIFIED.match(str(main["JBDM"])):
        return {
            **_stay(main),
            "ZK_RESULT": "2",
            "ZK_FIELD": "JBDM",
            "ZK_MSG": "主要诊断为未特指编码",
        }
    return {**_stay(main), "ZK_RESULT": "1", "ZK_FIELD": "", "ZK_MSG": ""}
