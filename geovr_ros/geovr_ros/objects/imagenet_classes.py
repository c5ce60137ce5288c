"""The 1000 ImageNet-1k (ILSVRC-2012) class names, in the order of the classifier's outputs.

Index i is the i-th output of an ImageNet classifier (the order of the sorted WordNet ids).
Taken from `imagenet_classes.txt` of the public repository pytorch/hub (commit a6fc887f,
2020-12-22), identical up to '_' for ' ' to that file's first version (commit 3658dec5,
the Keras class index `0, tench` ... `999, toilet_tissue`). The EfficientNet-Lite0 weights
used here agree with the order: they name scikit-image's `chelsea` 285 (Egyptian cat) and
`coffee` 967 (espresso) (training/tests/test_model_efficientnet.py).
Two names occur twice (crane 134 the bird / 517 the machine; maillot 638 / 639).
"""

IMAGENET_CLASSES: tuple[str, ...] = (
    'tench', 'goldfish', 'great white shark', 'tiger shark',  # 0
    'hammerhead', 'electric ray', 'stingray', 'cock',  # 4
    'hen', 'ostrich', 'brambling', 'goldfinch',  # 8
    'house finch', 'junco', 'indigo bunting', 'robin',  # 12
    'bulbul', 'jay', 'magpie', 'chickadee',  # 16
    'water ouzel', 'kite', 'bald eagle', 'vulture',  # 20
    'great grey owl', 'European fire salamander', 'common newt', 'eft',  # 24
    'spotted salamander', 'axolotl', 'bullfrog', 'tree frog',  # 28
    'tailed frog', 'loggerhead', 'leatherback turtle', 'mud turtle',  # 32
    'terrapin', 'box turtle', 'banded gecko', 'common iguana',  # 36
    'American chameleon', 'whiptail', 'agama', 'frilled lizard',  # 40
    'alligator lizard', 'Gila monster', 'green lizard', 'African chameleon',  # 44
    'Komodo dragon', 'African crocodile', 'American alligator', 'triceratops',  # 48
    'thunder snake', 'ringneck snake', 'hognose snake', 'green snake',  # 52
    'king snake', 'garter snake', 'water snake', 'vine snake',  # 56
    'night snake', 'boa constrictor', 'rock python', 'Indian cobra',  # 60
    'green mamba', 'sea snake', 'horned viper', 'diamondback',  # 64
    'sidewinder', 'trilobite', 'harvestman', 'scorpion',  # 68
    'black and gold garden spider', 'barn spider', 'garden spider', 'black widow',  # 72
    'tarantula', 'wolf spider', 'tick', 'centipede',  # 76
    'black grouse', 'ptarmigan', 'ruffed grouse', 'prairie chicken',  # 80
    'peacock', 'quail', 'partridge', 'African grey',  # 84
    'macaw', 'sulphur-crested cockatoo', 'lorikeet', 'coucal',  # 88
    'bee eater', 'hornbill', 'hummingbird', 'jacamar',  # 92
    'toucan', 'drake', 'red-breasted merganser', 'goose',  # 96
    'black swan', 'tusker', 'echidna', 'platypus',  # 100
    'wallaby', 'koala', 'wombat', 'jellyfish',  # 104
    'sea anemone', 'brain coral', 'flatworm', 'nematode',  # 108
    'conch', 'snail', 'slug', 'sea slug',  # 112
    'chiton', 'chambered nautilus', 'Dungeness crab', 'rock crab',  # 116
    'fiddler crab', 'king crab', 'American lobster', 'spiny lobster',  # 120
    'crayfish', 'hermit crab', 'isopod', 'white stork',  # 124
    'black stork', 'spoonbill', 'flamingo', 'little blue heron',  # 128
    'American egret', 'bittern', 'crane', 'limpkin',  # 132
    'European gallinule', 'American coot', 'bustard', 'ruddy turnstone',  # 136
    'red-backed sandpiper', 'redshank', 'dowitcher', 'oystercatcher',  # 140
    'pelican', 'king penguin', 'albatross', 'grey whale',  # 144
    'killer whale', 'dugong', 'sea lion', 'Chihuahua',  # 148
    'Japanese spaniel', 'Maltese dog', 'Pekinese', 'Shih-Tzu',  # 152
    'Blenheim spaniel', 'papillon', 'toy terrier', 'Rhodesian ridgeback',  # 156
    'Afghan hound', 'basset', 'beagle', 'bloodhound',  # 160
    'bluetick', 'black-and-tan coonhound', 'Walker hound', 'English foxhound',  # 164
    'redbone', 'borzoi', 'Irish wolfhound', 'Italian greyhound',  # 168
    'whippet', 'Ibizan hound', 'Norwegian elkhound', 'otterhound',  # 172
    'Saluki', 'Scottish deerhound', 'Weimaraner', 'Staffordshire bullterrier',  # 176
    'American Staffordshire terrier', 'Bedlington terrier', 'Border terrier', 'Kerry blue terrier',  # 180
    'Irish terrier', 'Norfolk terrier', 'Norwich terrier', 'Yorkshire terrier',  # 184
    'wire-haired fox terrier', 'Lakeland terrier', 'Sealyham terrier', 'Airedale',  # 188
    'cairn', 'Australian terrier', 'Dandie Dinmont', 'Boston bull',  # 192
    'miniature schnauzer', 'giant schnauzer', 'standard schnauzer', 'Scotch terrier',  # 196
    'Tibetan terrier', 'silky terrier', 'soft-coated wheaten terrier', 'West Highland white terrier',  # 200
    'Lhasa', 'flat-coated retriever', 'curly-coated retriever', 'golden retriever',  # 204
    'Labrador retriever', 'Chesapeake Bay retriever', 'German short-haired pointer', 'vizsla',  # 208
    'English setter', 'Irish setter', 'Gordon setter', 'Brittany spaniel',  # 212
    'clumber', 'English springer', 'Welsh springer spaniel', 'cocker spaniel',  # 216
    'Sussex spaniel', 'Irish water spaniel', 'kuvasz', 'schipperke',  # 220
    'groenendael', 'malinois', 'briard', 'kelpie',  # 224
    'komondor', 'Old English sheepdog', 'Shetland sheepdog', 'collie',  # 228
    'Border collie', 'Bouvier des Flandres', 'Rottweiler', 'German shepherd',  # 232
    'Doberman', 'miniature pinscher', 'Greater Swiss Mountain dog', 'Bernese mountain dog',  # 236
    'Appenzeller', 'EntleBucher', 'boxer', 'bull mastiff',  # 240
    'Tibetan mastiff', 'French bulldog', 'Great Dane', 'Saint Bernard',  # 244
    'Eskimo dog', 'malamute', 'Siberian husky', 'dalmatian',  # 248
    'affenpinscher', 'basenji', 'pug', 'Leonberg',  # 252
    'Newfoundland', 'Great Pyrenees', 'Samoyed', 'Pomeranian',  # 256
    'chow', 'keeshond', 'Brabancon griffon', 'Pembroke',  # 260
    'Cardigan', 'toy poodle', 'miniature poodle', 'standard poodle',  # 264
    'Mexican hairless', 'timber wolf', 'white wolf', 'red wolf',  # 268
    'coyote', 'dingo', 'dhole', 'African hunting dog',  # 272
    'hyena', 'red fox', 'kit fox', 'Arctic fox',  # 276
    'grey fox', 'tabby', 'tiger cat', 'Persian cat',  # 280
    'Siamese cat', 'Egyptian cat', 'cougar', 'lynx',  # 284
    'leopard', 'snow leopard', 'jaguar', 'lion',  # 288
    'tiger', 'cheetah', 'brown bear', 'American black bear',  # 292
    'ice bear', 'sloth bear', 'mongoose', 'meerkat',  # 296
    'tiger beetle', 'ladybug', 'ground beetle', 'long-horned beetle',  # 300
    'leaf beetle', 'dung beetle', 'rhinoceros beetle', 'weevil',  # 304
    'fly', 'bee', 'ant', 'grasshopper',  # 308
    'cricket', 'walking stick', 'cockroach', 'mantis',  # 312
    'cicada', 'leafhopper', 'lacewing', 'dragonfly',  # 316
    'damselfly', 'admiral', 'ringlet', 'monarch',  # 320
    'cabbage butterfly', 'sulphur butterfly', 'lycaenid', 'starfish',  # 324
    'sea urchin', 'sea cucumber', 'wood rabbit', 'hare',  # 328
    'Angora', 'hamster', 'porcupine', 'fox squirrel',  # 332
    'marmot', 'beaver', 'guinea pig', 'sorrel',  # 336
    'zebra', 'hog', 'wild boar', 'warthog',  # 340
    'hippopotamus', 'ox', 'water buffalo', 'bison',  # 344
    'ram', 'bighorn', 'ibex', 'hartebeest',  # 348
    'impala', 'gazelle', 'Arabian camel', 'llama',  # 352
    'weasel', 'mink', 'polecat', 'black-footed ferret',  # 356
    'otter', 'skunk', 'badger', 'armadillo',  # 360
    'three-toed sloth', 'orangutan', 'gorilla', 'chimpanzee',  # 364
    'gibbon', 'siamang', 'guenon', 'patas',  # 368
    'baboon', 'macaque', 'langur', 'colobus',  # 372
    'proboscis monkey', 'marmoset', 'capuchin', 'howler monkey',  # 376
    'titi', 'spider monkey', 'squirrel monkey', 'Madagascar cat',  # 380
    'indri', 'Indian elephant', 'African elephant', 'lesser panda',  # 384
    'giant panda', 'barracouta', 'eel', 'coho',  # 388
    'rock beauty', 'anemone fish', 'sturgeon', 'gar',  # 392
    'lionfish', 'puffer', 'abacus', 'abaya',  # 396
    'academic gown', 'accordion', 'acoustic guitar', 'aircraft carrier',  # 400
    'airliner', 'airship', 'altar', 'ambulance',  # 404
    'amphibian', 'analog clock', 'apiary', 'apron',  # 408
    'ashcan', 'assault rifle', 'backpack', 'bakery',  # 412
    'balance beam', 'balloon', 'ballpoint', 'Band Aid',  # 416
    'banjo', 'bannister', 'barbell', 'barber chair',  # 420
    'barbershop', 'barn', 'barometer', 'barrel',  # 424
    'barrow', 'baseball', 'basketball', 'bassinet',  # 428
    'bassoon', 'bathing cap', 'bath towel', 'bathtub',  # 432
    'beach wagon', 'beacon', 'beaker', 'bearskin',  # 436
    'beer bottle', 'beer glass', 'bell cote', 'bib',  # 440
    'bicycle-built-for-two', 'bikini', 'binder', 'binoculars',  # 444
    'birdhouse', 'boathouse', 'bobsled', 'bolo tie',  # 448
    'bonnet', 'bookcase', 'bookshop', 'bottlecap',  # 452
    'bow', 'bow tie', 'brass', 'brassiere',  # 456
    'breakwater', 'breastplate', 'broom', 'bucket',  # 460
    'buckle', 'bulletproof vest', 'bullet train', 'butcher shop',  # 464
    'cab', 'caldron', 'candle', 'cannon',  # 468
    'canoe', 'can opener', 'cardigan', 'car mirror',  # 472
    'carousel', "carpenter's kit", 'carton', 'car wheel',  # 476
    'cash machine', 'cassette', 'cassette player', 'castle',  # 480
    'catamaran', 'CD player', 'cello', 'cellular telephone',  # 484
    'chain', 'chainlink fence', 'chain mail', 'chain saw',  # 488
    'chest', 'chiffonier', 'chime', 'china cabinet',  # 492
    'Christmas stocking', 'church', 'cinema', 'cleaver',  # 496
    'cliff dwelling', 'cloak', 'clog', 'cocktail shaker',  # 500
    'coffee mug', 'coffeepot', 'coil', 'combination lock',  # 504
    'computer keyboard', 'confectionery', 'container ship', 'convertible',  # 508
    'corkscrew', 'cornet', 'cowboy boot', 'cowboy hat',  # 512
    'cradle', 'crane', 'crash helmet', 'crate',  # 516
    'crib', 'Crock Pot', 'croquet ball', 'crutch',  # 520
    'cuirass', 'dam', 'desk', 'desktop computer',  # 524
    'dial telephone', 'diaper', 'digital clock', 'digital watch',  # 528
    'dining table', 'dishrag', 'dishwasher', 'disk brake',  # 532
    'dock', 'dogsled', 'dome', 'doormat',  # 536
    'drilling platform', 'drum', 'drumstick', 'dumbbell',  # 540
    'Dutch oven', 'electric fan', 'electric guitar', 'electric locomotive',  # 544
    'entertainment center', 'envelope', 'espresso maker', 'face powder',  # 548
    'feather boa', 'file', 'fireboat', 'fire engine',  # 552
    'fire screen', 'flagpole', 'flute', 'folding chair',  # 556
    'football helmet', 'forklift', 'fountain', 'fountain pen',  # 560
    'four-poster', 'freight car', 'French horn', 'frying pan',  # 564
    'fur coat', 'garbage truck', 'gasmask', 'gas pump',  # 568
    'goblet', 'go-kart', 'golf ball', 'golfcart',  # 572
    'gondola', 'gong', 'gown', 'grand piano',  # 576
    'greenhouse', 'grille', 'grocery store', 'guillotine',  # 580
    'hair slide', 'hair spray', 'half track', 'hammer',  # 584
    'hamper', 'hand blower', 'hand-held computer', 'handkerchief',  # 588
    'hard disc', 'harmonica', 'harp', 'harvester',  # 592
    'hatchet', 'holster', 'home theater', 'honeycomb',  # 596
    'hook', 'hoopskirt', 'horizontal bar', 'horse cart',  # 600
    'hourglass', 'iPod', 'iron', "jack-o'-lantern",  # 604
    'jean', 'jeep', 'jersey', 'jigsaw puzzle',  # 608
    'jinrikisha', 'joystick', 'kimono', 'knee pad',  # 612
    'knot', 'lab coat', 'ladle', 'lampshade',  # 616
    'laptop', 'lawn mower', 'lens cap', 'letter opener',  # 620
    'library', 'lifeboat', 'lighter', 'limousine',  # 624
    'liner', 'lipstick', 'Loafer', 'lotion',  # 628
    'loudspeaker', 'loupe', 'lumbermill', 'magnetic compass',  # 632
    'mailbag', 'mailbox', 'maillot', 'maillot',  # 636
    'manhole cover', 'maraca', 'marimba', 'mask',  # 640
    'matchstick', 'maypole', 'maze', 'measuring cup',  # 644
    'medicine chest', 'megalith', 'microphone', 'microwave',  # 648
    'military uniform', 'milk can', 'minibus', 'miniskirt',  # 652
    'minivan', 'missile', 'mitten', 'mixing bowl',  # 656
    'mobile home', 'Model T', 'modem', 'monastery',  # 660
    'monitor', 'moped', 'mortar', 'mortarboard',  # 664
    'mosque', 'mosquito net', 'motor scooter', 'mountain bike',  # 668
    'mountain tent', 'mouse', 'mousetrap', 'moving van',  # 672
    'muzzle', 'nail', 'neck brace', 'necklace',  # 676
    'nipple', 'notebook', 'obelisk', 'oboe',  # 680
    'ocarina', 'odometer', 'oil filter', 'organ',  # 684
    'oscilloscope', 'overskirt', 'oxcart', 'oxygen mask',  # 688
    'packet', 'paddle', 'paddlewheel', 'padlock',  # 692
    'paintbrush', 'pajama', 'palace', 'panpipe',  # 696
    'paper towel', 'parachute', 'parallel bars', 'park bench',  # 700
    'parking meter', 'passenger car', 'patio', 'pay-phone',  # 704
    'pedestal', 'pencil box', 'pencil sharpener', 'perfume',  # 708
    'Petri dish', 'photocopier', 'pick', 'pickelhaube',  # 712
    'picket fence', 'pickup', 'pier', 'piggy bank',  # 716
    'pill bottle', 'pillow', 'ping-pong ball', 'pinwheel',  # 720
    'pirate', 'pitcher', 'plane', 'planetarium',  # 724
    'plastic bag', 'plate rack', 'plow', 'plunger',  # 728
    'Polaroid camera', 'pole', 'police van', 'poncho',  # 732
    'pool table', 'pop bottle', 'pot', "potter's wheel",  # 736
    'power drill', 'prayer rug', 'printer', 'prison',  # 740
    'projectile', 'projector', 'puck', 'punching bag',  # 744
    'purse', 'quill', 'quilt', 'racer',  # 748
    'racket', 'radiator', 'radio', 'radio telescope',  # 752
    'rain barrel', 'recreational vehicle', 'reel', 'reflex camera',  # 756
    'refrigerator', 'remote control', 'restaurant', 'revolver',  # 760
    'rifle', 'rocking chair', 'rotisserie', 'rubber eraser',  # 764
    'rugby ball', 'rule', 'running shoe', 'safe',  # 768
    'safety pin', 'saltshaker', 'sandal', 'sarong',  # 772
    'sax', 'scabbard', 'scale', 'school bus',  # 776
    'schooner', 'scoreboard', 'screen', 'screw',  # 780
    'screwdriver', 'seat belt', 'sewing machine', 'shield',  # 784
    'shoe shop', 'shoji', 'shopping basket', 'shopping cart',  # 788
    'shovel', 'shower cap', 'shower curtain', 'ski',  # 792
    'ski mask', 'sleeping bag', 'slide rule', 'sliding door',  # 796
    'slot', 'snorkel', 'snowmobile', 'snowplow',  # 800
    'soap dispenser', 'soccer ball', 'sock', 'solar dish',  # 804
    'sombrero', 'soup bowl', 'space bar', 'space heater',  # 808
    'space shuttle', 'spatula', 'speedboat', 'spider web',  # 812
    'spindle', 'sports car', 'spotlight', 'stage',  # 816
    'steam locomotive', 'steel arch bridge', 'steel drum', 'stethoscope',  # 820
    'stole', 'stone wall', 'stopwatch', 'stove',  # 824
    'strainer', 'streetcar', 'stretcher', 'studio couch',  # 828
    'stupa', 'submarine', 'suit', 'sundial',  # 832
    'sunglass', 'sunglasses', 'sunscreen', 'suspension bridge',  # 836
    'swab', 'sweatshirt', 'swimming trunks', 'swing',  # 840
    'switch', 'syringe', 'table lamp', 'tank',  # 844
    'tape player', 'teapot', 'teddy', 'television',  # 848
    'tennis ball', 'thatch', 'theater curtain', 'thimble',  # 852
    'thresher', 'throne', 'tile roof', 'toaster',  # 856
    'tobacco shop', 'toilet seat', 'torch', 'totem pole',  # 860
    'tow truck', 'toyshop', 'tractor', 'trailer truck',  # 864
    'tray', 'trench coat', 'tricycle', 'trimaran',  # 868
    'tripod', 'triumphal arch', 'trolleybus', 'trombone',  # 872
    'tub', 'turnstile', 'typewriter keyboard', 'umbrella',  # 876
    'unicycle', 'upright', 'vacuum', 'vase',  # 880
    'vault', 'velvet', 'vending machine', 'vestment',  # 884
    'viaduct', 'violin', 'volleyball', 'waffle iron',  # 888
    'wall clock', 'wallet', 'wardrobe', 'warplane',  # 892
    'washbasin', 'washer', 'water bottle', 'water jug',  # 896
    'water tower', 'whiskey jug', 'whistle', 'wig',  # 900
    'window screen', 'window shade', 'Windsor tie', 'wine bottle',  # 904
    'wing', 'wok', 'wooden spoon', 'wool',  # 908
    'worm fence', 'wreck', 'yawl', 'yurt',  # 912
    'web site', 'comic book', 'crossword puzzle', 'street sign',  # 916
    'traffic light', 'book jacket', 'menu', 'plate',  # 920
    'guacamole', 'consomme', 'hot pot', 'trifle',  # 924
    'ice cream', 'ice lolly', 'French loaf', 'bagel',  # 928
    'pretzel', 'cheeseburger', 'hotdog', 'mashed potato',  # 932
    'head cabbage', 'broccoli', 'cauliflower', 'zucchini',  # 936
    'spaghetti squash', 'acorn squash', 'butternut squash', 'cucumber',  # 940
    'artichoke', 'bell pepper', 'cardoon', 'mushroom',  # 944
    'Granny Smith', 'strawberry', 'orange', 'lemon',  # 948
    'fig', 'pineapple', 'banana', 'jackfruit',  # 952
    'custard apple', 'pomegranate', 'hay', 'carbonara',  # 956
    'chocolate sauce', 'dough', 'meat loaf', 'pizza',  # 960
    'potpie', 'burrito', 'red wine', 'espresso',  # 964
    'cup', 'eggnog', 'alp', 'bubble',  # 968
    'cliff', 'coral reef', 'geyser', 'lakeside',  # 972
    'promontory', 'sandbar', 'seashore', 'valley',  # 976
    'volcano', 'ballplayer', 'groom', 'scuba diver',  # 980
    'rapeseed', 'daisy', "yellow lady's slipper", 'corn',  # 984
    'acorn', 'hip', 'buckeye', 'coral fungus',  # 988
    'agaric', 'gyromitra', 'stinkhorn', 'earthstar',  # 992
    'hen-of-the-woods', 'bolete', 'ear', 'toilet tissue',  # 996
)

assert len(IMAGENET_CLASSES) == 1000
