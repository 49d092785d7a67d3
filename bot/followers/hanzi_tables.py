"""Characters that tell Simplified from Traditional Chinese.

``SIMPLIFIED_ONLY`` holds characters whose form exists only in Simplified Chinese,
``TRADITIONAL_ONLY`` those whose form exists only in Traditional Chinese (Taiwan and Hong Kong
spellings alike). Both are derived from ``_PAIRS``, the most frequent (Simplified, Traditional)
pairs of the standard simplification tables, ordered roughly by how often the Simplified
character is used. A character that ordinary text in both scripts uses (``_BOTH_SCRIPTS``: 干
beside 乾/幹, 后 beside 後, 台 beside 臺, 著 in Simplified 著名, 温 in Hong Kong…) or that
appears on both sides of some pair is evidence for neither script and is left out of both sets.
"""

from __future__ import annotations

# Each token is one pair: the Simplified character, then one Traditional form (several tokens for
# one-to-many mappings and for the Taiwan / Hong Kong variants such as 為/爲, 裡/裏, 線/綫).
_PAIRS = """
    了瞭 国國 为為 为爲 这這 个個 个箇 来來 会會 时時 出齣 学學 说說 说説 家傢 们們 于於 后後
    发發 发髮 对對 长長 过過 着著 业業 里裡 里裏 经經 面麵 面麪 门門 动動 进進 区區 开開 产產
    军軍 还還 种種 现現 机機 体體 表錶 与與 当當 两兩 实實 么麼 么麽 只隻 只祇 关關 从從 制製
    内內 没沒 将將 员員 东東 头頭 间間 无無 见見 合閤 战戰 点點 场場 向嚮 数數 样樣 问問 并並
    并併 万萬 级級 应應 资資 务務 回迴 系係 系繫 气氣 汉漢 总總 电電 声聲 设設 义義 统統 处處
    马馬 儿兒 领領 队隊 计計 别別 别彆 权權 话話 报報 给給 变變 书書 几幾 华華 议議 称稱 决決
    张張 导導 术術 才纔 结結 师師 达達 题題 条條 规規 县縣 它牠 风風 运運 组組 听聽 布佈 济濟
    党黨 论論 强強 黄黃 选選 记記 却卻 职職 号號 类類 传傳 带帶 干幹 干乾 农農 边邊 据據 联聯
    广廣 质質 阳陽 难難 历歷 历曆 专專 认認 车車 台臺 台颱 台檯 台枱 游遊 举舉 线線 线綫 团團
    团糰 备備 争爭 众眾 众衆 连連 调調 转轉 该該 克剋 尔爾 让讓 较較 际際 亲親 单單 红紅 价價
    约約 周週 亚亞 则則 属屬 积積 图圖 千韆 准準 极極 装裝 许許 参參 吃喫 观觀 鱼魚 办辦 复復
    复複 复覆 远遠 群羣 构構 随隨 划劃 势勢 热熱 夫伕 网網 语語 铁鐵 断斷 爱愛 纪紀 况況 证證
    编編 局侷 满滿 觉覺 双雙 乐樂 标標 确確 织織 志誌 项項 飞飛 节節 龙龍 响響 药藥 药葯 轻輕
    击擊 请請 离離 显顯 罗羅 营營 视視 护護 创創 余餘 兴興 占佔 虽雖 费費 试試 宝寶 识識 维維
    采採 宫宮 环環 斗鬥 乡鄉 责責 严嚴 桥橋 仅僅 胜勝 杀殺 围圍 席蓆 态態 杨楊 负負 层層 须須
    须鬚 续續 状狀 银銀 范範 修脩 致緻 终終 钱錢 赛賽 独獨 细細 冲衝 冲沖 获獲 获穫 习習 医醫
    尽盡 尽儘 脸臉 弹彈 楼樓 艺藝 陆陸 协協 镇鎮 检檢 写寫 苏蘇 注註 验驗 紧緊 劳勞 户戶 优優
    财財 养養 适適 陈陳 卫衛 卫衞 念唸 云雲 伤傷 绝絕 阶階 刘劉 刚剛 亿億 闻聞 审審 压壓 升昇
    升陞 监監 敌敵 兰蘭 温溫 园園 树樹 征徵 词詞 岛島 预預 继繼 执執 谁誰 惊驚 核覈 画畫 辑輯
    剑劍 谈談 背揹 礼禮 愿願 筑築 乱亂 讲講 临臨 挥揮 板闆 胡鬍 欧歐 叶葉 简簡 担擔 岁歲 荆荊
    贵貴 娘孃 辖轄 帮幫 块塊 额額 错錯 剧劇 欢歡 够夠 孙孫 阵陣 销銷 坚堅 练練 脚腳 读讀 测測
    吴吳 宁寧 宁甯 换換 异異 顾顧 曲麯 朱硃 顺順 鲜鮮 败敗 货貨 矿礦 归歸 买買 险險 评評 吗嗎
    厂廠 遗遺 笔筆 输輸 松鬆 渐漸 顶頂 训訓 录錄 毕畢 丰豐 献獻 爷爺 纳納 钟鐘 钟鍾 脑腦 饭飯
    扩擴 齐齊 赶趕 诉訴 诗詩 础礎 届屆 蒙矇 蒙濛 蒙懞 静靜 盘盤 卖賣 湾灣 减減 秘祕 灵靈 杂雜
    泽澤 侧側 庆慶 妈媽 馆館 补補 彩綵 旧舊 轮輪 妇婦 载載 怀懷 软軟 枪槍 墙牆 恶惡 恶噁 谷穀
    顿頓 稳穩 酸痠 诸諸 绿綠 佛彿 荣榮 针針 针鍼 托託 宽寬 折摺 库庫 罢罷 谢謝 巨鉅 页頁 困睏
    拥擁 圣聖 戏戲 奖獎 岩巖 币幣 圆圓 烧燒 讨討 烟煙 烟菸 误誤 疗療 闭閉 脱脫 秋鞦 借藉 寻尋
    岗崗 卷捲 丽麗 横橫 驻駐 纸紙 夺奪 灯燈 坏壞 丝絲 径徑 购購 阴陰 床牀 择擇 宪憲 峰峯 鲁魯
    庙廟 舰艦 御禦 课課 奥奧 虚虛 隐隱 粮糧 络絡 摇搖 潜潛 庄莊 厅廳 赵趙 访訪 韦韋 吨噸 扬揚
    纵縱 纷紛 贸貿 汇匯 汇彙 汇滙 灭滅 仪儀 缓緩 盖蓋 迹跡 释釋 润潤 岭嶺 虑慮 钢鋼 码碼 坛壇
    坛罈 坛罎 梁樑 累纍 损損 税稅 综綜 伦倫 挂掛 韩韓 竞競 乌烏 铺鋪 脉脈 纯純 杯盃 谋謀 剂劑
    幸倖 谓謂 频頻 壮壯 骑騎 鸡雞 虫蟲 绍紹 铜銅 泛氾 摆擺 欲慾 签簽 签籤 缩縮 废廢 订訂 绩績
    盐鹽 萨薩 贴貼 触觸 莲蓮 抢搶 闹鬧 纺紡 讯訊 誉譽 梦夢 伙夥 峡峽 残殘 闪閃 贼賊 倾傾 贫貧
    诺諾 麦麥 泪淚 辈輩 镜鏡 贡貢 缘緣 贝貝 骂罵 岳嶽 饮飲 奋奮 雕鵰 跃躍 赞贊 赞讚 启啟 启啓
    阁閣 劲勁 晋晉 沟溝 锋鋒 胆膽 凭憑 闯闖 汤湯 迁遷 叹嘆 叹歎 储儲 贯貫 彻徹 凤鳳 赏賞 辽遼
    询詢 毁毀 净淨 弃棄 亩畝 冬鼕 尸屍 伟偉 览覽 龄齡 绕繞 浓濃 绪緒 蓝藍 舍捨 荡蕩 阅閱 阅閲
    鸿鴻 惯慣 症癥 鸟鳥 扎紮 辞辭 穷窮 键鍵 递遞 隶隸 厉厲 闲閑 闲閒 袭襲 灾災 涨漲 湿濕 郑鄭
    译譯 邓鄧 肠腸 诏詔 册冊 锅鍋 阔闊 趋趨 锦錦 颜顏 悬懸 诚誠 晓曉 蒋蔣 摄攝 罚罰 辆輛 腾騰
    绘繪 扑撲 愈癒 颁頒 违違 贷貸 饰飾 滚滾 迟遲 辅輔 烦煩 盗盜 凉涼 冈岡 驾駕 肃肅 抚撫 仿彷
    炼煉 纲綱 杰傑 忧憂 扫掃 暂暫 渔漁 宾賓 寿壽 猪豬 涌湧 邻鄰 劝勸 践踐 顷頃 赋賦 莱萊 拟擬
    贤賢 愤憤 轰轟 陕陝 昆崑 腊臘 犹猶 辉輝 颇頗 浅淺 沈瀋 丧喪 惨慘 驱驅 涂塗 牵牽 咸鹹 详詳
    纤纖 档檔 岂豈 绣繡 绣綉 吓嚇 赖賴 卢盧 颗顆 邮郵 弦絃 凯凱 帅帥 锁鎖 帐帳 胶膠 壳殼 脏髒
    脏臟 弯彎 挡擋 筹籌 肿腫 杆桿 凶兇 债債 贾賈 谱譜 夹夾 尘塵 钻鑽 丛叢 贺賀 扰擾 锡錫 炉爐
    纹紋 亏虧 鉴鑒 奸姦 齿齒 兽獸 碍礙 辩辯 拨撥 恒恆 励勵 鸣鳴 偿償 拦攔 胁脅 纽紐 烂爛 尝嘗
    尝嚐 辟闢 艰艱 荐薦 厘釐 乔喬 轴軸 喷噴 轨軌 畅暢 雾霧 丢丟 咨諮 洁潔 窝窩 飘飄 肤膚 砖磚
    赢贏 挤擠 狮獅 诊診 扣釦 篮籃 唤喚 侠俠 枢樞 栏欄 纠糾 链鏈 恋戀 惧懼 笼籠 弥彌 叙敘 叙敍
    吊弔 剥剝 骗騙 猎獵 俩倆 缝縫 携攜 滩灘 祸禍 驰馳 狱獄 纬緯 踪蹤 浑渾 绳繩 颈頸 遥遙 郁鬱
    忆憶 阀閥 逻邏 恼惱 贪貪 疯瘋 侦偵 鹰鷹 驶駛 斩斬 鹤鶴 赐賜 闷悶 轿轎 辐輻 伪偽 伪僞 抛拋
    侨僑 吕呂 饱飽 玛瑪 碱鹼 冯馮 仓倉 钦欽 庞龐 祯禎 舱艙 坝壩 夸誇 艳艷 艳豔 聪聰 仆僕 瑶瑤
    谦謙 卧臥 猫貓 衔銜 苍蒼 浆漿 铸鑄 咽嚥 惩懲 迈邁 锐銳 锐鋭 颤顫 滨濱 饿餓 缠纏 怜憐 撑撐
    肾腎 胀脹 谨謹 鹅鵝 丑醜 镑鎊 兑兌 贞貞 诞誕 禀稟 朴樸 饼餅 狭狹 赔賠 绵綿 诱誘 卜蔔 顽頑
    摊攤 账賬 鸭鴨 挣掙 拐柺 芦蘆 睁睜 纱紗 冻凍 唇脣 轩軒 蛮蠻 晕暈 郧鄖 鹏鵬 栖棲 叠疊 舆輿
    斋齋 萧蕭 皱皺 蚀蝕 钉釘 阐闡 挨捱 哄鬨 逊遜 铭銘 戚慼 硕碩 赌賭 饶饒 沪滬 雇僱 掷擲 厌厭
    渊淵 氢氫 溃潰 颠顛 铅鉛 挽輓 禅禪 韵韻 婴嬰 悦悅 肴餚 凑湊 烛燭 兹茲 歼殲 钧鈞 渗滲 窑窯
    谐諧 厦廈 柜櫃 谊誼 壶壺 赚賺 谭譚 勋勳 饲飼 裤褲 姜薑 畴疇 喂餵 耻恥 牺犧 贩販 竖豎 伞傘
    晒曬 鳞鱗 佣傭 龟龜 泼潑 屡屢 僵殭 瞒瞞 厮廝 刮颳 钩鉤 钩鈎 谅諒 霉黴 阙闕 坟墳 宠寵 鳍鰭
    讼訟 虾蝦 涛濤 巩鞏 洒灑 枣棗 滞滯 哑啞 焕煥 娱娛 捞撈 蜡蠟 婶嬸 娇嬌 厨廚 嘱囑 赠贈 禄祿
    铃鈴 虏虜 饥飢 饥饑 缔締 蕴蘊 蕴藴 鸦鴉 锻鍛 骤驟 庵菴 吁籲 捣搗 茎莖 厢廂 匀勻 驼駝 缚縛
    垄壟 旷曠 绸綢 缴繳 贱賤 躯軀 颂頌 帜幟 绑綁 仑侖 帘簾 镖鏢 钠鈉 刹剎 妆妝 妆粧 痴癡 驴驢
    铝鋁 闸閘 滥濫 酱醬 啸嘯 骚騷 窃竊 凿鑿 垫墊 钙鈣 哟喲 锥錐 灶竈 懒懶 盏盞 庐廬 谕諭 栗慄
    屿嶼 酿釀 诈詐 锌鋅 卤鹵 卤滷 沦淪 凛凜 蚕蠶 搅攪 哗嘩 呜嗚 搁擱 骇駭 鹃鵑 淀澱 阎閻 浏瀏
    诵誦 萝蘿 颊頰 灿燦 琼瓊 凄悽 凄淒 骄驕 驳駁 谏諫 缅緬 锤錘 觅覓 拢攏 诀訣 苹蘋 沾霑 坠墜
    贿賄 钓釣 沧滄 耸聳 垒壘 谜謎 贬貶 窜竄 葱蔥 颖穎 诡詭 腻膩 彦彥 痒癢 粤粵 讽諷 衬襯 烫燙
    昼晝 闽閩 钾鉀 敛斂 寝寢 毙斃 荫蔭 涡渦 桩樁 锣鑼 缮繕 揽攬 铲鏟 尴尷 恳懇 秃禿 搂摟 挠撓
    驿驛 诧詫 绒絨 谎謊 讳諱 泻瀉 苇葦 谣謠 蚁蟻 潇瀟 粪糞 栋棟 谴譴 堕墮 浇澆 绞絞 鲍鮑 钞鈔
    讶訝 琐瑣 滤濾 绅紳 窍竅 鸽鴿 捡撿 驯馴 澜瀾 洼窪 镶鑲 邹鄒 俭儉 缆纜 聂聶 芜蕪 骆駱 呕嘔
    厕廁 窥窺 瞩矚 缀綴 浊濁 缉緝 绽綻 谬謬 熏燻 垦墾 驹駒 羁羈 嚣囂 辫辮 蝇蠅 汹洶 惭慚 韧韌
    缕縷 涩澀 筛篩 椭橢 矫矯 钥鑰 饵餌 桨槳 樱櫻 侣侶 咏詠 翘翹 鲤鯉 拣揀 鳄鱷 栅柵 锯鋸 莹瑩
    闺閨 溅濺 绢絹 烁爍 瘫癱 疮瘡 攒攢 鲨鯊 漓灕 赎贖 蝉蟬 杠槓 馈饋 删刪 祷禱 毡氈 聋聾 炖燉
    瘾癮 钝鈍 馒饅 鲸鯨 镁鎂 颅顱 蔑衊 蚂螞 袜襪 尧堯 呛嗆 挚摯 搀攙 侥僥 冢塚 谍諜 萤螢 嘘噓
    枫楓 雏雛 屉屜 钵缽 钵鉢 咙嚨 恤卹 叽嘰 芸蕓 莺鶯 酝醞 酝醖 喽嘍 篱籬 殴毆 啧嘖 秆稈 帧幀
    蜕蛻 亘亙 踊踴 柠檸 哒噠 唠嘮 啰囉 绦縧 呗唄 撸擼 怼懟 馀餘 侬儂 哔嗶 诶誒"""

# Characters written the same in both scripts although they also stand in a pair above, so their
# presence says nothing about the script (a surname, an older meaning, a Taiwan/HK standard form).
# Not listed here on purpose: 愿 据 极 种 确 於 徵 and the like, whose use in the other script is
# archaic or limited to rare surnames, because they decide many real messages.
_BOTH_SCRIPTS = """
    了出家于后着里面表么只制内合向万回系几才它布党干广台游克价周千准吃群划夫局志余占
    采斗席范修致注户适念云升温征核著背板胡叶娘曲朱厂松丰蒙秘彩谷酸佛托折巨困岩脱秋借
    卷床峰御梁累税挂杯幸虫泛欲伙岳雕冬尸舍症扎愈仿杰涌昆沈涂咸覆弦杆凶乾奸恒辟厘咨扣
    吊郁夸仆卧咽丑兑朴卜拐唇挨哄戚雇挽悦肴姜喂佣僵刮霉蜡庵吁帘痴灶栗淀凄沾葱藉熏漓杠
    蔑恤芸蜕亘夥彷瞭祇剋
"""


def _sides(table: str) -> tuple[frozenset[str], frozenset[str]]:
    """Split the pair table into its Simplified and Traditional characters."""
    tokens = table.split()
    return frozenset(token[0] for token in tokens), frozenset(token[1] for token in tokens)


_SIMPLIFIED_SIDE, _TRADITIONAL_SIDE = _sides(_PAIRS)
_SHARED = frozenset("".join(_BOTH_SCRIPTS.split()))

SIMPLIFIED_ONLY: frozenset[str] = _SIMPLIFIED_SIDE - _TRADITIONAL_SIDE - _SHARED
"""Characters found only in Simplified Chinese text."""

TRADITIONAL_ONLY: frozenset[str] = _TRADITIONAL_SIDE - _SIMPLIFIED_SIDE - _SHARED
"""Characters found only in Traditional Chinese text."""
