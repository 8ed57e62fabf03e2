// Word lists for the generated company: Chinese and Latin names side by side, some with non-ASCII Latin
// letters and "R&D" (an "&" inside the message is a classic AES-GCM parsing trap).

export interface BilingualName {
  zh: string;
  en: string;
}

export const COMPANIES: readonly BilingualName[] = [
  { zh: "星河科技有限公司", en: "Galaxy Tech" },
  { zh: "云帆网络", en: "Cloudsail Networks" },
  { zh: "青松数据", en: "Greenpine Data" },
  { zh: "华夏智造", en: "Huaxia Manufacturing" },
  { zh: "蓝海零售", en: "Bluesea Retail" },
];

export const DEPARTMENTS: readonly BilingualName[] = [
  { zh: "研发部", en: "R&D" },
  { zh: "产品部", en: "Product" },
  { zh: "市场部", en: "Marketing" },
  { zh: "销售部", en: "Sales" },
  { zh: "财务部", en: "Finance" },
  { zh: "人力资源部", en: "Human Resources" },
  { zh: "法务部", en: "Legal" },
  { zh: "运维部", en: "Operations" },
  { zh: "客户服务部", en: "Customer Service" },
  { zh: "采购部", en: "Procurement" },
  { zh: "质量管理部", en: "Quality" },
  { zh: "信息安全部", en: "Security" },
  { zh: "行政部", en: "Administration" },
  { zh: "数据平台部", en: "Data Platform" },
  { zh: "战略发展部", en: "Strategy" },
];

export const TEAMS: readonly BilingualName[] = [
  { zh: "前端组", en: "Frontend" },
  { zh: "后端组", en: "Backend" },
  { zh: "测试组", en: "QA" },
  { zh: "架构组", en: "Architecture" },
  { zh: "移动端组", en: "Mobile" },
  { zh: "平台组", en: "Platform" },
  { zh: "基础设施组", en: "Infrastructure" },
  { zh: "数据分析组", en: "Analytics" },
  { zh: "招聘组", en: "Recruiting" },
  { zh: "薪酬组", en: "Compensation" },
  { zh: "培训组", en: "Training" },
  { zh: "会计组", en: "Accounting" },
  { zh: "税务组", en: "Tax" },
  { zh: "资金组", en: "Treasury" },
  { zh: "品牌组", en: "Brand" },
  { zh: "增长组", en: "Growth" },
  { zh: "渠道组", en: "Channels" },
  { zh: "大客户组", en: "Key Accounts" },
  { zh: "合规组", en: "Compliance" },
  { zh: "华北区", en: "North China" },
  { zh: "华东区", en: "East China" },
  { zh: "华南区", en: "South China" },
  { zh: "海外业务", en: "International" },
  { zh: "北京办公室", en: "Beijing Office" },
  { zh: "上海办公室", en: "Shanghai Office" },
  { zh: "深圳办公室", en: "Shenzhen Office" },
  { zh: "成都办公室", en: "Chengdu Office" },
  { zh: "慕尼黑办公室", en: "München Office" },
  { zh: "圣保罗办公室", en: "São Paulo Office" },
];

/** Surname, its pinyin. Two compound surnames on purpose. */
export const SURNAMES: ReadonlyArray<readonly [string, string]> = [
  ["王", "wang"], ["李", "li"], ["张", "zhang"], ["刘", "liu"], ["陈", "chen"], ["杨", "yang"],
  ["黄", "huang"], ["赵", "zhao"], ["吴", "wu"], ["周", "zhou"], ["徐", "xu"], ["孙", "sun"],
  ["马", "ma"], ["朱", "zhu"], ["胡", "hu"], ["郭", "guo"], ["何", "he"], ["林", "lin"],
  ["罗", "luo"], ["高", "gao"], ["欧阳", "ouyang"], ["司马", "sima"],
];

export const GIVEN_NAMES: ReadonlyArray<readonly [string, string]> = [
  ["伟", "wei"], ["芳", "fang"], ["娜", "na"], ["敏", "min"], ["静", "jing"], ["丽", "li"],
  ["强", "qiang"], ["磊", "lei"], ["军", "jun"], ["洋", "yang"], ["勇", "yong"], ["艳", "yan"],
  ["杰", "jie"], ["娟", "juan"], ["涛", "tao"], ["明", "ming"], ["超", "chao"], ["秀英", "xiuying"],
  ["桂英", "guiying"], ["志强", "zhiqiang"], ["建华", "jianhua"], ["晓明", "xiaoming"], ["雨桐", "yutong"],
  ["子涵", "zihan"], ["浩然", "haoran"], ["思远", "siyuan"],
];

export const LATIN_FIRST: readonly string[] = [
  "Emma", "Liam", "Olivia", "Noah", "Sophia", "Lucas", "Mia", "Ethan", "Amelia", "Mateo",
  "Chloé", "José", "Zoë", "Björn", "Anaïs", "François", "Łukasz", "Søren",
];

export const LATIN_LAST: readonly string[] = [
  "Smith", "Müller", "García", "Martin", "Rossi", "Silva", "Novak", "Kowalski", "O'Brien",
  "Dubois", "Tanaka", "Nguyen", "Johansson", "Fernández",
];

export const LATIN_MIDDLE: readonly string[] = ["Marie", "James", "Anne", "Paul", "Louise"];

export const TITLES: readonly BilingualName[] = [
  { zh: "工程师", en: "Engineer" },
  { zh: "高级工程师", en: "Senior Engineer" },
  { zh: "经理", en: "Manager" },
  { zh: "总监", en: "Director" },
  { zh: "专员", en: "Specialist" },
  { zh: "分析师", en: "Analyst" },
  { zh: "设计师", en: "Designer" },
  { zh: "顾问", en: "Consultant" },
  { zh: "实习生", en: "Intern" },
];

export const LOCATIONS: readonly string[] = ["北京", "上海", "深圳", "杭州", "成都", "武汉", "西安", "Berlin", "Paris", "São Paulo"];

/** ASCII slug of a Latin name: diacritics folded, anything else dropped ("O'Brien" → "obrien", "Łukasz" → "lukasz"). */
export function asciiSlug(text: string): string {
  return text
    .replace(/Ł/g, "L")
    .replace(/ł/g, "l")
    .replace(/ø/g, "o")
    .replace(/Ø/g, "O")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "");
}
