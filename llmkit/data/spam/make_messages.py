"""Build llmkit's SMS spam/ham data set (messages.tsv) from hand-written text.

Every message and fragment below was written by the llmkit team for this kit.
About a third of each class is hand-written whole messages; the rest is
composed from hand-written frames with alternatives ``[a|b|]`` and slots
``{name}`` (``{name^}`` capitalises the first letter), then roughened with
SMS-style abbreviations, casing and the odd typo (ham) or shouting and
txt-speak (spam).  A fixed seed makes the output reproducible:

    python make_messages.py            # rewrites messages.tsv next to this file
    python make_messages.py --check    # only verifies that the file is current

The script also checks: no exact duplicates, no near-duplicates (word-set
Jaccard >= 0.7 or character similarity >= 0.85, after expanding SMS
abbreviations and masking digits), and that no 6-word sequence occurs in more
than 3% of the messages of a class.  Phone numbers use the fictional 555 / 07700 900 ranges
and every URL uses the reserved ``.example`` top-level domain.
"""

import difflib
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 20240611
N_PER_CLASS = 600
OUT = Path(__file__).with_name("messages.tsv")

# --------------------------------------------------------------------------
# A tiny template expander
# --------------------------------------------------------------------------

TOKEN = re.compile(r"\[([^\[\]]*)\]|\{(\w+)(\^?)\}")


def expand(rng, text, slots):
    """Resolve [a|b] choices and {slot} references until none are left."""
    for _ in range(500):
        m = TOKEN.search(text)
        if m is None:
            break
        if m.group(1) is not None:
            choice = rng.choice(m.group(1).split("|"))
        else:
            source = slots[m.group(2)]
            choice = source(rng) if callable(source) else rng.choice(source)
            choice = expand(rng, choice, slots)
            if m.group(3):
                choice = choice[:1].upper() + choice[1:]
        text = text[: m.start()] + choice + text[m.end():]
    return tidy(text)


def tidy(text):
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" ([,.!?])", r"\1", text)
    text = re.sub(r",{2,}", ",", text)
    for before, after in ((",.", "."), (".,", ","), ("?.", "?"), ("!.", "!")):
        text = text.replace(before, after)
    return text.strip()


def digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def alnum(rng, n):
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(n))


# --------------------------------------------------------------------------
# HAM: hand-written whole messages
# --------------------------------------------------------------------------

HAM_WRITTEN = """\
Ok
kk
On my way
omw
Yeah go on then
lol what
Haha that's brilliant
Are you still up?
did u get home ok?
Home safe x
Just landed! Phone about to die, will call from the hotel
Can you feed the cat tonight? I'm stuck at work till 8
Who ate the last yoghurt. Be honest.
the wifi's down again, have u tried turning it off and on
Dad's fixed the boiler. Only took him four hours and two trips to the hardware shop
Not gonna lie that film was rubbish
Did you see the sky tonight? Unreal
I've left the spare key under the blue pot
Tell Sam I said happy birthday!!
Can't talk, in a meeting. Call u after
the printer on floor 2 is jammed again fyi
Is it bin day tomorrow or thursday?
Dinner's in the oven, just needs 20 mins at 180
What was the name of that place we had tapas at
Sorry missed your call, was in the shower
Running a bit behind, start without me
My train's cancelled. Typical.
Can u pick up some bread on the way back, the seeded one not the white
Got the job!!!!
I got the job. Starting Monday. Still can't believe it
lol no chance
brb
Happy anniversary you two! Have a lovely evening
Nan says thank you for the flowers, she's put them on the windowsill
The dog has eaten a sock. Vet says he'll be fine but £80 later...
Ugh Monday
Can you send me the photos from saturday?
Just seen your message, sorry! Yes Thursday works
Could you have a look at the draft before I send it to the client?
Leaving the office now
Park is heaving, might meet u by the gate instead
Fancy a walk later if it stops raining?
I think I left my charger at yours
Is the match on at 3 or 5:30?
We lost 4-1 lol. At least it wasn't raining
Hope ur feeling better hun x
Thanks for today, really needed that
Sorry about earlier. I was tired and grumpy. Talk later?
No worries at all
Ha ha you wish
Shall I bring anything? Wine? Crisps? Emotional support?
How did the exam go??
Exam was fine I think, question 4 was evil though
Don't forget ur dentist at 10 tmrw
Did you remember to book the car in for its service
Bus is 10 mins late, classic
Where did u park
U left ur scarf in my car
Just finished the whole box of biscuits. Send help
Are we still on for tennis sat morning?
Cant make it tonight sorry, kids are both ill
Morning! Coffee?
Need anything from town? Heading in at 12
Can u ring me when u get a sec
What's the wifi password again
the password is on the back of the router, the long one
Landlord is coming round at 4 to look at the damp
Plumber says next Tuesday at the earliest
Grandad's out of hospital and moaning about the food so he's definitely fine
I've put the chicken in the freezer by mistake, can we do pasta instead
Miss you. Come home soon
who's driving on Saturday
I can drive if someone else does the way back
Whats the postcode for the venue
Gym at 6? I need someone to shame me into going
Lol I fell asleep on the sofa at 8:30 like a pensioner
Do u want the spare ticket for friday? Otherwise I'll ask Priya
Ur a legend thank you
Just checking u got my email about the rota
Sorry wrong number!
Who is this?
I'm at the front, by the coffee place
Traffic's horrendous, be there by 7 hopefully
Are you awake?
Can't sleep. Still thinking about that quiz question
It was Canberra by the way, not Sydney
Well done on the race!! What was ur time?
Did 5k in 27 mins, new best
Haven't heard from u in ages, hows things?
Good thanks! Busy with the new flat. Come visit
Our flight's delayed 2 hours. Airport sandwiches it is
Tell ur mum thanks for the lift
Remind me to never eat a kebab at 2am again
Are the kids alright with fish fingers for tea
Homework's done, can I go to Ellie's?
Yes but back by 6 please
Where r u? Food's on the table
Coming now!
5 mins
Outside
Door's open, just come in
Can't find the remote. Have u hidden it again
Parents evening is Wednesday at 5.10
Reminder: team lunch Friday, I've booked for 12
yeah I can do sunday, what time
The boss is in a mood today, keep ur head down
Payday!!! Drinks on me
Is anyone else freezing or is it just me
Heating's broken at work, we're all sat in our coats
Just saw a fox in the garden bold as anything
My plants are all dead. I watered them. I think I watered them too much
Thinking of you today x
Congratulations on the baby!! So happy for you both
Thanks so much. We're exhausted but she's perfect
Did you leave the oven on?
No I'm pretty sure I turned it off. Pretty sure.
Got a parking ticket. Fantastic end to the week
Ok I'll meet you there at half 7
Any idea what time the shop shuts on Sundays
Think it's 4
The cake was amazing, can I have the recipe
It's literally just a lemon drizzle, I'll write it down for u
Can we move our call to tomorrow? Today got away from me
Sure, 10am?
Perfect
Have u seen my blue jumper
It's in the wash
Stuck behind a tractor for the last 3 miles
I'll be late, the lift's broken and I'm on the 9th floor
Did you finish that book? No spoilers I'm only on chapter 6
The ending made me cry on the train. Embarrassing
Don't text and drive!!
I'm proud of u, you know that right
Gonna be a quiet one tonight, takeaway and telly
What do u want for ur birthday
Socks. I genuinely need socks
The wedding invite said 1pm but the ceremony's at 1.30 apparently
Sunburnt after 20 minutes outside. I'm a vampire
Keys? Wallet? Phone? Passport?
Got them all. Leaving now
I owe u £12 for the tickets, will send it tonight
Sent! Let me know if it doesn't come through
Can u check if I left the hair straighteners on
they're off. u owe me
Bored at work. Entertain me
Just stood on a plug. Worst pain known to humanity
Are you bringing the kids or is it adults only
Adults only I think but check with Gemma
Happy Friday!!
Friday finally
Do u know anyone who can fix a bike puncture
Watch a video, it's easy, I believe in u
My sister's visiting this weekend so I'll be a bit quiet
That's so annoying, sorry to hear that
Hope the interview goes well tomorrow, you'll smash it
Fingers crossed for you x
Thanks! Nervous but ready
Lunch?
Starving. Yes.
Can't believe it's snowing in April
did the heating man come
he came, he looked, he said he needs a part
Just a heads up, the road by the school is closed
Be careful, it's icy out
Where are the spare batteries
Top drawer in the kitchen, behind the takeaway menus
I've been on hold for 45 minutes. Send snacks
What's for tea
Spag bol unless someone has a better idea
I love you, see you tonight
Love u too x
Remember to take the chicken out of the freezer
The cat brought in a frog. It's alive. It's in the bathroom. Help
Lol no way, did u catch it?
Text me when u get there so I know ur safe
Here! All good
Can u believe he said that in front of everyone
I know. I didn't know where to look
Whos coming to the quiz thursday, need a team of 6
Count me in
I'm in if it's not too late
Sorry, busy that night
Just found £20 in an old coat pocket. Best day ever
The train smells like egg sandwiches. Every single carriage.
Finally finished the report. Going home to lie on the floor
Dog walk at 7? Same place
Did you get the bread or shall I
I'll get it
Please tell me you recorded the final
Can I borrow ur drill this weekend
Of course, it's in the shed, key's on the hook
Still waiting for the engineer. Window was 8 til 12. It's 12.40
Pub quiz tonight? We came second last week, redemption awaits
That joke you told at dinner is still making me laugh
You free for a quick call at 4?
Yes, I'll ring you
Please stop sending me dog videos I'm trying to work. Actually no, keep going
Picked up ur parcel from next door, it's on the stairs
I'll be home late, don't wait up
Ok drive safe
My phone screen cracked again. Third time this year
Mum fell asleep during the film again
Don't tell Dad about the surprise party!!
My lips are sealed
How much do I owe u for the petrol
Nothing, don't be silly
Tickets are booked! 14th, 7.30, row F
Yay! Can't wait
Guess who I just bumped into at the shops... Mr Patel from primary school!
Haha no way, does he still wear those ties
The ties are eternal
Sorry I'm such a rubbish texter
Its fine, I'm worse
Back in 10, just popping to the cashpoint
How's the new job treating you?
So far so good. People are nice, coffee is bad
Can u take the washing in if it starts raining
Its raining. Did u take the washing in
Oops
Stop stealing my chips
Ur the one who said u weren't hungry
I'm bored, want to get a curry
always
I think I'm coming down with something, gonna stay in
Poor you, want me to drop some soup round
Yes please. Ur an angel
did u lock the car
How do u turn the oven clock off, it's been flashing for a week
no idea, just put a tea towel over it
Just realised I've had my jumper on inside out all day
Nobody told me!!! Some friends u lot are
The baby said dada today. Well. She said dadadadada. Counts.
Have a safe flight, text when u land
Just rang the garage, car will be ready Thursday
Can u lend me a fiver til Friday
Has anyone got a phone charger I can borrow at the party
Don't worry about the glass, it was from the pound shop anyway
I'm so sorry about ur dad. Here if u need anything
Thank you. Means a lot
What size is the box? Will it fit in the car
Easily, it's smaller than it looks
Bring ur swimming stuff on sat, the hotel has a pool
Our Wi-Fi is faster than yours now haha
I've signed us up for the charity walk, don't hate me
The neighbours' music is so loud I can hear the lyrics
Are the clocks going back this weekend or next
This weekend! Extra hour in bed
That's the third time he's cancelled on me
maybe just give him one more chance?
Whose turn is it to do the school run
Mine, I think. Sigh
Have u eaten? I made too much soup
Wow ok thanks for the invite lol
It's not a party it's 3 people and a board game calm down
Can I come? I'll bring crisps
Crisps are the price of entry, yes
Meeting ran over, can we push to 4.15
Got your voicemail, will sort it first thing tomorrow
Do we have a spare duvet for when Auntie Jo stays
Loft, blue bag, smells a bit of mothballs
the toddler has discovered the word no
Mum I need £5 for the school trip by tomorrow
It's in my purse, take it but tell me
Did u put petrol in the car? It's on empty
Only sort of. It's on the light
Need a lift to the station at 6 tmrw, any chance?
Yeah I'll be up anyway
Going to bed. Night x
Night night, sleep well
Good luck today!!
Thx!! Feel sick
You'll be fine. Breathe
How was the dentist
Two fillings and a lecture about flossing
Right, so the plan is: meet at mine at 6, taxi at half 6, table's booked for 7. Nobody be late this time, I mean it Josh
Just got off the phone with the insurance people. They're sending someone on Thursday to look at the ceiling. Apparently it happens all the time in old houses, which is less comforting than they think
Sorry I went quiet, work has been mental this week. Can we do Sunday instead? I'll cook, you bring pudding
Can you remind me what we agreed about screen time? Maya is telling me you said two hours and I find that hard to believe
Had the best chat with Nan today. She told me she hitchhiked to the coast in 1962 with a suitcase full of jam. Why did nobody tell me this before
The landlord finally replied. He says he'll fix the window 'at some point' which I'm taking as never. Might just buy some tape
"""

# --------------------------------------------------------------------------
# HAM: composed messages
# --------------------------------------------------------------------------

HAM_ITEMS = ["milk", "bread", "eggs", "pasta", "teabags", "loo roll", "bin bags",
             "washing up liquid", "bananas", "cheese", "something for tea", "dog food",
             "cat litter", "coffee", "onions", "butter", "a lemon", "crisps", "tomatoes",
             "oat milk", "nappies", "AA batteries", "squash", "potatoes", "cereal", "rice",
             "a birthday card", "lightbulbs", "ketchup", "yoghurts"]

HAM_SLOTS = {
    "name": ["Jen", "Mo", "Sam", "Priya", "Tom", "Aisha", "Dan", "Katie", "Rob", "Leah",
             "Jamie", "Nat", "Omar", "Beth", "Chris", "Gemma", "Raj", "Lou", "Ellie", "Ben",
             "Zara", "Kev", "Hannah", "Mike", "Sophie", "Ade", "Fran", "Luca", "Maya", "Josh"],
    "late_amt": ["5 mins", "10 mins", "10 minutes", "15 mins", "20 min", "a few mins",
                 "half an hour", "an hour", "25 mins", "a couple of mins"],
    "latereason": ["the bus didn't turn up", "couldn't find my keys", "traffic is awful",
                   "the train is stuck outside the station", "the kids won't put their shoes on",
                   "got held up at work", "missed my stop", "got stuck on a call",
                   "had to go back for my phone", "roadworks everywhere", "the car wouldn't start",
                   "my shift overran", "there's a diversion on the ring road",
                   "the queue at the petrol station is mad", "the dog ran off in the park",
                   "I fell asleep on the sofa", "I got on the wrong bus", "the level crossing is down"],
    "drink": ["pint", "coffee", "lemonade", "glass of red", "cider", "tea", "hot choc"],
    "day": ["monday", "Tuesday", "weds", "Wednesday", "thursday", "thurs", "Friday", "fri",
            "Saturday", "sat", "sunday", "Sunday", "the weekend", "next week"],
    "time": ["7", "half 7", "7.30", "8ish", "6pm", "quarter to 8", "noon", "1", "10am",
             "about 9", "2.15", "half 12", "6.45", "4ish", "11"],
    "place": ["the pub", "the chippy", "the station", "the corner shop", "the cafe by the park",
              "the cinema", "the gym", "the library", "the town hall", "the car park",
              "the bus stop", "nan's", "the beach", "the big roundabout", "the swimming baths",
              "the market", "the church", "the bowling alley", "the garden centre", "platform 4",
              "the back entrance", "the clock tower", "the food court", "reception"],
    "activity": ["a curry", "the cinema", "a walk by the river", "a pizza", "a drink at the pub",
                 "dinner at mine", "a game of badminton", "the car boot sale", "the match at mine",
                 "bowling", "a swim", "brunch", "the quiz", "a takeaway and a film",
                 "the new burger place", "a bike ride", "karaoke", "a barbecue"],
    "activity_verb": ["get a curry", "go to the cinema", "go for a walk", "grab a pizza",
                      "go for a drink", "come round for dinner", "play badminton", "go bowling",
                      "go for a swim", "get brunch", "do the quiz", "watch a film",
                      "go for a bike ride", "try the new burger place", "go into town"],
    "item": HAM_ITEMS,
    "excuse": ["got the kids", "working late", "got a dentist appt", "I'm knackered",
               "already got plans", "car's in the garage", "I'm skint till payday",
               "my mum's visiting", "I've got a deadline", "I promised to babysit"],
    "doc": ["slides", "spreadsheet", "invoice", "notes from yesterday", "budget", "rota",
            "contract", "figures", "report", "presentation", "timesheet", "floor plan",
            "risk assessment", "agenda"],
    "workfyi": ["the coffee machine is broken again", "fire drill at 11",
                "the car park is shut for resurfacing", "the printer's out of toner",
                "the server's down so don't bother logging in", "there's cake in the kitchen",
                "new starter in today, be nice", "the aircon's on full blast, bring a jumper",
                "payroll's late this month", "the lifts are out, it's stairs all day",
                "the big boss is visiting at 2"],
    "meal": ["sunday lunch", "tea", "dinner", "brunch", "a roast", "lunch", "pancakes"],
    "gadget": ["tablet", "new phone", "telly", "remote", "laptop", "printer", "email"],
    "chore": ["feed the fish", "put the bins out", "lock the back door", "pay the window cleaner",
              "book the vet", "sign the school form", "water the tomatoes", "take ur tablets",
              "move the car", "ring the council", "defrost the freezer", "post the birthday card"],
    "mess": ["the milk out", "the back door open", "wet towels on the floor", "the tap running",
             "the hob on", "muddy boots in the hall", "the lid off the peanut butter",
             "an empty box back in the cupboard"],
    "mins_plain": ["2", "3", "4", "5"],
    "news": ["I passed my driving test", "we got the flat", "the boiler's fixed",
             "I got a pay rise", "the dog learned to open the back door",
             "I've booked us a holiday", "Sam proposed", "I got into uni",
             "my sister's having twins", "we won the quiz", "I found my wedding ring",
             "the cat came home", "I'm going to be an auntie", "they offered me the job"],
    "news2": ["handed my notice in", "passed my theory test", "paid off my credit card",
              "ran my first 10k", "finished painting the kitchen", "got the keys to the new place",
              "submitted my dissertation", "sold the old car", "got the cast off"],
    "food": ["cake", "a takeaway", "fizz", "a whole pizza", "ice cream", "chips"],
    "event": ["the party", "ur train", "the match", "the school play", "the barbecue",
              "the wedding", "the quiz", "the fireworks", "the film", "the gig", "the meeting"],
    "event2": ["the interview", "ur first day", "the date", "the driving lesson",
               "the hospital appt", "the trip", "the gig", "nan's birthday", "the holiday",
               "the parents evening", "the job fair", "the camping trip"],
    "show": ["that new crime drama", "the final", "the cooking show", "the match",
             "the documentary about octopuses", "the quiz show", "that series u recommended",
             "the dancing show", "the penalty shootout"],
    "question": ["where the spare key is", "how long to cook a jacket potato",
                 "if the chemist is open on sundays", "what size shoes Leo is",
                 "the wifi password", "when the bins go out", "who's got my ladder",
                 "what time the tip shuts", "where I put the passports",
                 "what we got Gran last year"],
    "favour": ["the lift", "dinner last night", "having the kids", "the birthday card",
               "sorting the tickets", "lending me the drill", "listening earlier",
               "picking up my parcel", "the lovely flowers", "covering my shift", "the advice",
               "feeding the cat", "the lasagne"],
    "healthplan": ["staying in bed", "gonna skip {activity}", "might work from home",
                   "need soup", "going to bed early", "not coming tonight sorry",
                   "off to the GP later"],
    "moan": ["it's raining again", "my laptop died", "the car's making that noise again",
             "I've got so much work", "the neighbours are drilling again",
             "I burnt the toast and set the smoke alarm off", "someone took my parking space",
             "I locked myself out", "the washing machine has flooded the kitchen"],
    "goodstory": ["the boss bought everyone lunch", "found a tenner on the pavement",
                  "the kids actually tidied their rooms", "I got upgraded on the flight",
                  "the bus driver waited for me", "my parcel came early"],
    "badstory": ["I got soaked walking to work", "my train was cancelled twice",
                 "the dog ate my sandwich", "I spilt coffee on my white shirt",
                 "I left my lunch on the bus", "the car failed its service"],
    "weather_advice": ["bring a coat", "wear suncream", "take the big umbrella",
                       "wrap up warm", "don't bother with the washing", "leave early, roads are bad"],
    "items2": lambda rng: " and ".join(rng.sample(HAM_ITEMS, 2)),
    "items3": lambda rng: ", ".join(rng.sample(HAM_ITEMS, rng.choice([3, 3, 4]))),
    "relative": ["Mum", "Dad", "Nan", "Gran", "Grandad", "Auntie Jo", "Uncle Pete"],
}

HAM_FRAMES = [
    # running late
    "[sorry|soz|so sorry|argh|ugh] [running|gonna be|I'll be] {late_amt} late[. {latereason^}|, {latereason}|]",
    "{latereason^}. [be there|there|with u] in {late_amt}",
    "[Might|Will|Could] be [a bit|slightly|a tiny bit|quite] late[, {latereason}|]. [save me a seat|get me a {drink}|start without me|don't wait|order for me]",
    "[Only just|Just|Only now] leaving[ now|]. {latereason^}[ again|]",
    "[Tell|Let] {name} [I'm running late|I'll be late|I'm on my way][, {late_amt} tops|]",
    # plans
    "[are u|r u|you|u] free [tonight|{day}|{day} night|{day} afternoon]? [fancy|thinking|was thinking] {activity}",
    "{activity^} on {day}? [I can book|I'll book|shall I book] for {time}",
    "[Anyone|Who's] up for {activity} [later|tonight|{day}]?",
    "[What|wat] [are u|r u|you] [up to|doing] [later|tonight|{day}]? [fancy|want to] {activity_verb}?",
    "[Still|Are we still] on for {activity} {day}?",
    "[We should|Let's] {activity_verb} [soon|sometime|this month], [it's been ages|I miss u|my treat]",
    "{name} [and|&] I [are going to|might] {activity_verb} {day}[, come!|, u in?|]",
    # errands
    "[can u|could you|any chance u could] [grab|pick up|get] {item} [on ur way home|from the shop|on the way back|when ur out]?[ ta|thx|]",
    "[We're|we are|we r] out of [{item}|{items2}][ again|]",
    "[Don't forget|Remember|dont forget] {item}[!|!!|]",
    "[Shopping list|List|Need]: {items3}",
    "[Shall I|Should I|Do u want me to] [get|pick up] {item} [or have we got some|or is there some left|while I'm out]?",
    "[Got|Picked up] {items2}, [anything else|need anything else|is that everything]?",
    # where are you
    "[I'm|im|Im] [at|outside|by|near] {place}[, where r u|, where are you|. u here yet?|. no rush|]",
    "Meet [at|outside|by] {place} [at|around] {time}?",
    "[Just got to|Just arrived at|At] {place}[, it's packed|, no sign of u|, grabbing a table|]",
    "[Where r u|where are you|Where are u][?|??] [I'm|we're] [by|at|outside] {place}",
    "[Can|Could] [you|u] [pick me up|get me] from {place} [at|around] {time}?",
    # short replies
    "[ok|okay|OK|k|kk|sure|yep|yeah|yes] [see u then|sounds good|no problem|will do|cool|perfect|np|great|lovely]",
    "[haha|lol|hahaha|lmao] [yes|no way|classic|true|stop|I can't|same|fair enough]",
    "[sounds good|sure thing|no worries|all good|no prob], [see you|see u|cu] [at|around] {time}",
    "[Can't|cant|Can not] [today|tonight|this time][, sorry|, soz|][. {excuse^}|]",
    # work
    "[Hi|Hey|Morning] {name}, [could you|can you|any chance you could] [send|forward|share] [me|] the {doc} [before|by] {time}?",
    "[Meeting|Call|Standup|Catch up|1:1] [moved|pushed|moved back] to {time}[, same link|, same room|, sorry|]",
    "[I'm|Im] [working from home|wfh|off sick|in late|on a training day] [today|tomorrow|{day}], [ping|call|text] me if [you need|u need] anything",
    "[Just|Finally] [finished|sent|uploaded] the {doc}[, let me know what you think|, fingers crossed|. Going for lunch|]",
    "[Is|Has] the {doc} [ready|been signed off|still on track][ yet|]? [Client|The boss|Finance] [is asking|keeps asking|wants it today]",
    "[Can|Could] [you|u] [cover|swap] [my|] shift on {day}? [I'll owe you one|I'll do ur next one|Happy to swap]",
    "[Heads up|FYI|Just so u know], {workfyi}",
    # family
    "{relative} [wants to know|is asking] [if|whether] [you're|ur|you are] [coming|staying] for {meal} [on {day}|this weekend|]",
    "{relative} says [r u|are you|are u] coming for {meal}[ on {day}|]?",
    "[Can|Could] [you|u] [ring|call|pop round to see] [nan|grandad|gran] [later|this week], [she's|he's] [lonely|stuck with the {gadget}|been asking for you]",
    "[Did you remember|Did u remember|Have you remembered|Have u remembered|Did u remember|u remember] to {chore}?",
    "[Your|Ur] [dinner|tea|plate] is in the [oven|microwave|fridge][, {mins_plain} mins on high|, just heat it up|]",
    "[Who|Whoever] [left|forgot to put away] {mess}[, it wasn't me|. Not impressed|. Again|]",
    "[Kids|The kids|Both kids] [are|r] [in bed|asleep|finally down|at their dad's][, come round|, wine?|, peace at last|]",
    "[Tell|Can u tell|Pls tell] {relative} [I'll|we'll] [be there|come over|pop in] [on {day}|after work|at {time}]",
    # news and moods
    "[OMG|omg|Guess what|Guess what!!|Big news|Ahh]. {news^}",
    "{news^}[!|!!|!!!|, can't believe it|, so happy]",
    "[Just|Finally] {news2}[. Celebrating with {food}|. Feeling smug|!!|]",
    "[Feeling|feel] [rubbish|awful|a bit better|much better|rough|like death][ today|][, {healthplan}|]",
    "[Got|Have] [a stinking cold|a migraine|a bad back|the flu|a sore throat], [so|] {healthplan}",
    "[Ugh|Urgh|Sigh|Meh]. {moan^}",
    "Best day [ever|in ages|of the week]. {goodstory^}",
    "Worst day [ever|in ages|of the year]. {badstory^}",
    "[It's|its] [freezing|boiling|chucking it down|so windy|gorgeous] [out|outside|here][, {weather_advice}|]",
    # questions and thanks
    "[What time|wat time|When] does {event} start?",
    "[Where's|where is] {event} again?",
    "[Did|Have] [you|u] [see|seen|watch|watched] {show}[ last night|]? [no spoilers|what did u think|I'm obsessed]",
    "[How|how] was {event2}?[ Tell me everything|?|]",
    "[Do|Does] [you|anyone|u] [know|remember] {question}?",
    "[Thanks|Thank you|Cheers|ta|thx] [so much|again|loads|a million|] for {favour}[ x| xx|!|!!|]",
    "[Really|Honestly] [appreciate|appreciated] {favour}[, you're a star|, owe u one|]",
]

HAM_OPENERS = ["hey ", "hiya ", "Hi {name}, ", "{name}! ", "oi ", "morning, ", "Hey hun, ", "yo "]
HAM_CLOSERS = [" x", " xx", " :)", " lol", " haha", " :(", " ;)", " !", " :P"]

ABBREVIATIONS = [
    (r"\byou're\b", ["ur", "youre"]),
    (r"\byou\b", ["u"]),
    (r"\byour\b", ["ur"]),
    (r"\bare\b", ["r"]),
    (r"\btomorrow\b", ["2moro", "tmrw", "tomoz"]),
    (r"\btonight\b", ["2nite", "tonite"]),
    (r"\bplease\b", ["pls", "plz"]),
    (r"\bthanks\b", ["thx", "ta"]),
    (r"\bbecause\b", ["cos", "coz"]),
    (r"\blater\b", ["l8r"]),
    (r"\bgreat\b", ["gr8"]),
    (r"\bminutes\b", ["mins"]),
    (r"\bdon't\b", ["dont"]),
    (r"\bI'm\b", ["im", "Im"]),
    (r"\bcan't\b", ["cant"]),
    (r"\bI'll\b", ["ill", "Ill"]),
    (r"\bwhat\b", ["wat", "wot"]),
    (r"\bgoing to\b", ["gonna"]),
    (r"\bwant to\b", ["wanna"]),
    (r"\bbefore\b", ["b4"]),
    (r"\bsomething\b", ["smth", "sumthin"]),
    (r"\bwith\b", ["w"]),
    (r"\bthough\b", ["tho"]),
    (r"\bpeople\b", ["ppl"]),
    (r"\bsee you\b", ["cu", "c u"]),
]


def abbreviate(rng, text, p):
    for pattern, repl in ABBREVIATIONS:
        text = re.sub(pattern, lambda m: rng.choice(repl) if rng.random() < p else m.group(0),
                      text, flags=re.IGNORECASE)
    return text


def typo(rng, text):
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    kind = rng.random()
    if kind < 0.5:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]   # swap two letters
    elif kind < 0.8:
        w = w[:j] + w[j + 1:]                     # drop a letter
    else:
        w = w[:j] + w[j] + w[j:]                  # double a letter
    words[i] = w
    return " ".join(words)


def roughen_ham(rng, text):
    greeted = text.split(" ")[0].lower().strip(",!") in {"hi", "hey", "hiya", "morning", "oi", "yo"}
    if rng.random() < 0.15 and not greeted:
        text = expand(rng, rng.choice(HAM_OPENERS), HAM_SLOTS) + " " + text[:1].lower() + text[1:]
    if rng.random() < 0.45:
        text = abbreviate(rng, text, rng.choice([0.4, 0.7, 1.0]))
    if rng.random() < 0.08:
        text = typo(rng, text)
    r = rng.random()
    if r < 0.25:
        text = text.lower()
    elif r < 0.45:
        text = text[:1].upper() + text[1:]
    if text.endswith(".") and rng.random() < 0.6:
        text = text[:-1]
    if rng.random() < 0.15 and text[-1:].isalnum():
        text += rng.choice(HAM_CLOSERS)
    return tidy(text)


# --------------------------------------------------------------------------
# SPAM: hand-written whole messages
# --------------------------------------------------------------------------

SPAM_WRITTEN = """\
URGENT: your number was picked in tonight's £2,000 cash draw. Ring 0906 555 0148 before midnight to lock it in. 150p/min, 18+
Weekly draw! Free entry for a shot at £500 - just send WIN to 80155. £1.50 per week, reply STOP whenever
We couldn't deliver your parcel because part of the address is missing. Fix it here: http://redelivery-now.example/uk
Dear customer, we've put a temporary hold on your account after some odd activity. Please confirm who you are at secure-login-check.example
New voicemail (0:42) waiting for you. Tap to listen: vm-inbox.example/play?id=88213
hiya its Lexi, 24, home alone and bored lol. fancy keeping me company? txt me on 69155 £1.50/msg
This coin is about to go through the roof. Group members banked 340% last month. Free to join: moonrise-signals.example
Last call: a tax rebate of £326.40 is sitting unclaimed in your name. Collect it before the window shuts: refund-portal.example
£1000 in your bank by teatime? Bad credit OK. Reply LOAN and one of our advisors will ring you. 0800 555 219
Spin to win every day this week! Cash prizes up to £20,000. Text SPIN7 to 87575, 150p a day for 7 days, 16+
Our system flagged 07700 900 614 as today's lucky number. See what you've won at prize-check.example - you'll be glad you did
hey its daisy, my battery's nearly gone but i wanna talk!! ring me on 0909 555 2714 b4 it dies xx (£1/min)
Your premium membership has lapsed. Renew within 24 hours to keep your benefits: member-renewal.example
Let Father Christmas ring your kids on Christmas Eve! Book a slot on 0906 555 8824. £1.50/min, ask the bill payer first
IMPORTANT: your energy payment bounced. Pay £48.12 today at bill-pay-update.example to avoid your supply being cut off
Your name has come up for a free week's stay at one of 40 holiday villas. Just reply with your full address to reserve it
Dad it's me, dropped my phone in the bath, this is my new number. Can you send £340 for my rent? Pay u back Friday. Can't talk, mic broken
Hi Mum new phone!! Text me back on this number when you see this, need a quick favour x
Your login has been disabled after too many attempts. Restore it here: id-restore.example
You've been picked for our loyalty mystery box! Only £1 postage: rewardbox.example
VIP vouchers worth £150 are yours to claim today only. Text SHOP to 85023. Members' offers, 16+, T&Cs apply
Fancy a new handset, 1000 mins and half price line rental? Call 0800 555 480 and it could arrive tomorrow
Your first ringtone is on us! Reply TONE now. Then the 20 biggest tones every week, £1.50/wk. Send STOP to 61610 to cancel
Your customer ID is 5920. To stop these messages send STOP to 87239. Helpline 0800 555 106
Charge of £849.99 made on your card for an electronics order. Wasn't you? Cancel at order-cancel.example
Thanks for your payment of £89.00. If you don't recognise it ring 0800 555 771 right away
ALERT: new login to your account from an unrecognised device. Not you? Lock it now: login-alert.example
Put in £200 today, take out £2,500 by next Friday. Our expert traders guarantee it. Reply YES to begin
Your delivery is on hold pending a 1.99 GBP settlement. Pay here: parcel-settle.example/p
Road tax overdue on your vehicle. Pay now or face a fine up to £1,000: vehicle-tax-renew.example
Good news, your loan is approved! £3,500 lands in your account today once you confirm your bank details at quickfunds.example
Your TV licence renewal failed. Update your payment details at licence-renewals.example
Loyalty reward: the newest phone, completely free, no strings. Call 0800 555 612 with ref PHONE22
Pack your bags! A Caribbean cruise or £2000 cash could be yours. Call free on 0800 555 443 to speak to an operator. 18+. txt X to 61610 to opt out
Make £1000s from your sofa! Easy online tasks, daily pay. Text WORK to 66044
FINAL NOTICE: this SIM will be deactivated within 24hrs unless you verify ownership at sim-verify.example
Good news! Your mobile account is £26.40 in credit. Request your refund at network-refund.example/claim
LIVE girls waiting on the line NOW. Call 0909 555 6661 (£1.50/min) or txt HOT to 69866
You're eligible for a free health check worth £199. Reply YES to book, STOP2END
£10 free bet, no deposit! Sign up at lucky-spins.example before Sunday. 18+ gamble responsibly
We've been trying to reach you about your vehicle's extended warranty. Call 0800 555 184 before it lapses
Greetings. A relative you never met has left an unclaimed estate worth $4.2 million. Reply with your full name and bank details to begin the transfer.
Your credit score just dropped 40 points. See why for FREE at score-checker.example
Council records show you overpaid last year. £286.15 is due back to you. Apply at council-refund.example
Your account statement shows 800 unused reward points, expiring on Friday. Call 0871 555 2230 and quote 42478
hey!! found ur number in my old phone, is this still Jess?? text me back, just moved here :) 89070 £1.50/msg
Designer watches at 70% off, today only! Shop: watch-outlet.example. Txt STOP to 62220
Your mailbox is 98% full. Get extra storage free: mail-storage.example/up
Get THE tune of the summer as your ringtone! Text HIT to 83338. £3/wk, 16+. STOP to cancel
hi its kate, how r u? off out tonight, wanna meet? ring me 0906 555 9123 x
Security notice: your card ending 4421 is suspended. Call 0800 555 390 to get it working again.
HOT TIP: XENO coin set to 50x before month end. Buy at token-launchpad.example. (not financial advice ;))
You've been chosen for a £500 supermarket voucher. Just finish a short survey: survey-rewards.example
Unpaid toll road charge: £6.50. Pay within 48 hours or a £100 penalty applies: toll-pay.example
Order #A8841 has shipped! Didn't order it? Cancel within 24 hours at order-support.example
Weekly quiz! Which country is Lisbon in? Txt your answer to 82277 to win a home cinema system. £1.50/msg
Lonely tonight? Hundreds of local girls want to chat, totally discreet. Txt LOVE to 69969 £1.50/msg 18+
Pension news: you may be able to unlock 25% of your pot early, tax free. Call 0800 555 266
Free spin on our prize wheel - win up to £5000! Reply SPIN. Msgs £1 each. 16+
BANKING ALERT: £1,240.00 transfer pending. Didn't request it? Cancel at transfer-cancel.example
500 new tablets to give away this week and you're on the list! Confirm delivery for 99p: tablet-giveaway.example
Numbers ending 7548 have been matched to a £350 award this week. Call 0871 555 3141 with code 3100 to check yours
Approved: a credit card with a £4,000 limit in your name. Accept the offer: card-offer.example
Overseas firm needs local agents to handle payments. Keep 10% of every transfer. Email agents@payhelp.example
Your energy supplier owes you £212. Claim the refund at energy-refund.example before the 31st
Text BANTER to 88088 for a joke every other day. £1.50 per joke, STOP to quit
Psst... someone in your contacts has a crush on u! Reply WHO to 89113 to find out. £1.50/msg
CASH BONANZA! This week only, every reply enters our £5k draw. Text CASH to 77120. 3 x £1.50 msgs/wk
Your broadband will be switched off tonight due to a billing error. Keep your service: bb-billing.example
Happy birthday from all of us! Claim your birthday gift card worth £75 at bday-treats.example (P&P applies)
Ur in luck!! Ur number is 1 of 10 picked 4 a free holiday 4 2. Call 0906 555 2210 now 2 claim. £1/min
Reminder: your gym membership payment failed. Update your card by tonight or lose your joining discount: gym-billing.example
You have a pending refund of £64.30 from your mobile provider. Claim within 3 days at refund-now.example
Psychic Rosa sees love in your future! Call her now on 0909 555 3377. £1.53/min, 18+, for entertainment only
See who viewed your profile this week: profile-views.example. 3 secret admirers waiting!
Parking fine notice: £60 unpaid. Pay within 7 days to avoid court action: pcn-payments.example
Get paid £45 an hour testing apps from home! No skills needed. Reply APPS to 64129
Your number has won the network raffle! To collect your £750 text CLAIM to 80877. Std rate msgs, 18+
Double your bitcoin in 24 hours! Send any amount to our wallet and get 2x back instantly. Ends tonight: btc-double.example
STOP paying full price! 3 months of streaming for £1. Grab it: stream-deal.example
Xmas special! Win a luxury hamper worth £300. Txt XMAS to 81170. £2/msg 16+
Account update required: we couldn't verify the address for your new card. Do it now at card-verify.example
Final demand: a balance of £412.09 remains on your account. Avoid bailiffs - pay at debt-settle.example
Your friend Sarah has sent you an e-card! Open it here: ecard-view.example/8823
Earn FREE airtime! Forward this to 10 friends and get £20 credit. Reply DONE when sent
You have 4 unread messages from someone nearby. See them now at nearby-chat.example. 18+
"""

# --------------------------------------------------------------------------
# SPAM: composed messages
# --------------------------------------------------------------------------


def money_big(rng):
    n = rng.choice([500, 750, 900, 1000, 1200, 1500, 2000, 2500, 3000, 5000, 10000])
    cur = "£" if rng.random() < 0.75 else "$"
    return cur + (f"{n:,}" if rng.random() < 0.6 else str(n))


def money_mid(rng):
    return rng.choice(["£", "£", "£", "$"]) + str(rng.choice([50, 75, 100, 150, 200, 250, 300, 350, 400, 500]))


def fee(rng):
    return rng.choice(["£", "£", "£", "$"]) + f"{rng.choice([0, 1, 1, 2, 2, 3])}.{rng.choice(['99', '49', '45', '95', '20', '10', '75'])}"


def premium(rng):
    return f"09{rng.choice('0067')}{rng.choice('1689')} 555 {digits(rng, 4)}"


def freephone(rng):
    return rng.choice(["0800 555 ", "0808 555 ", "0800 555 "]) + digits(rng, rng.choice([3, 4]))


def short_code(rng):
    return str(rng.randint(60000, 89999))


def mobile(rng):
    return "07700 900 " + digits(rng, 3)


URL_WORDS_A = ["claim", "secure", "my", "win", "prize", "parcel", "redeliver", "verify", "account",
               "refund", "fast", "bonus", "vip", "track", "gift", "reward", "support", "login",
               "update", "easy", "uk", "go", "pay", "safe", "online", "help", "quick", "smart"]
URL_WORDS_B = ["portal", "centre", "check", "now", "hub", "zone", "desk", "today", "direct",
               "point", "online", "express", "access", "service", "link", "app", "24", "247"]


def url(rng):
    a, b = rng.sample(URL_WORDS_A, 1)[0], rng.choice(URL_WORDS_B)
    host = rng.choice([f"{a}-{b}", f"{a}{b}", f"{a}-{b}", f"{a}-{rng.choice(URL_WORDS_A)}"])
    scheme = rng.choice(["", "", "http://", "https://", "www."])
    path = rng.choice(["", "", "/" + alnum(rng, 5).lower(), "/c/" + digits(rng, 4),
                       "/?ref=" + alnum(rng, 4), "/claim", "/login"])
    return f"{scheme}{host}.example{path}"


SPAM_SLOTS = {
    "bigamt": money_big,
    "midamt": money_mid,
    "money": lambda rng: rng.choice([money_big, money_mid])(rng),
    "fee": fee,
    "premium": premium,
    "freephone": freephone,
    "short": short_code,
    "mobile": mobile,
    "url": url,
    "code": lambda rng: rng.choice(["claim code ", "code: ", "ref ", "ID ", "PIN ", ""]) + alnum(rng, rng.choice([4, 5, 6])),
    "trackno": lambda rng: alnum(rng, 2) + digits(rng, rng.choice([6, 8, 9])),
    "n": lambda rng: str(rng.choice([3, 5, 10, 12, 20, 37, 50, 100])),
    "pct": lambda rng: str(rng.choice([150, 200, 340, 400, 500, 800, 1200])),
    "mult": lambda rng: str(rng.choice([5, 10, 20, 50, 100])),
    "clock": lambda rng: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
    "coinamt": lambda rng: rng.choice(["0.", "0.0", "1.", "2."]) + digits(rng, 3),
    "refund": lambda rng: f"£{rng.randint(90, 890)}.{digits(rng, 2)}",
    "loanamt": lambda rng: rng.choice(["£", "£", "$"]) + f"{rng.choice([500, 1000, 1500, 2000, 2500, 5000, 7500, 10000, 15000, 25000]):,}",
    "smallloan": lambda rng: str(rng.choice([50, 100, 200, 250])),
    "bigloan": lambda rng: f"{rng.choice([1000, 2000, 3000, 5000, 10000]):,}",
    "dayrate": lambda rng: rng.choice(["£", "£", "$"]) + str(rng.choice([150, 200, 250, 300, 350, 400, 500])),
    "smallpay": lambda rng: rng.choice(["£", "$"]) + rng.choice(["2", "5", "8", "10", "1.50", "3.20"]),
    "subamt": lambda rng: rng.choice(["£", "£", "$"]) + rng.choice(["9.99", "14.99", "34.99", "49.00", "79.99", "119.00", "189.99"]),
    "crypto_pair": lambda rng: "{0}{1} into {0}{2:,}".format(
        rng.choice(["$", "£"]), rng.choice([100, 200, 250, 300, 500]),
        rng.choice([5000, 8000, 12000, 20000, 40000])),
    "shout": ["CONGRATULATIONS!", "Congratulations,", "URGENT!", "WINNER!!", "Congrats!",
              "Good news!", "ATTENTION:", "Dear Winner,", "You're a winner!", "Lucky you!", ""],
    "prize": ["a {bigamt} cash prize", "{bigamt} in cash", "a luxury cruise for 2",
              "a 7-night beach holiday", "a brand new laptop", "a {midamt} shopping voucher",
              "a top spec smartphone", "a 4K TV", "a games console bundle", "{midamt} of gift cards",
              "a year of free fuel", "a weekend spa break for two", "a mystery prize worth up to {bigamt}",
              "a new car", "an e-bike", "{midamt} of store credit", "tickets for 2 to a festival"],
    "cost": ["150p/min", "£1.50/min", "Calls 60p/min", "£1.50 per msg", "18+", "16+ only",
             "T&Cs apply", "Std rates apply", "150ppm 18+", "Calls cost £1/min from landlines",
             "Cost £1.50 per msg, 16+", "T&C's: {url}", "Over 18s only", "£3/call 18+", "TsCs apply"],
    "stop": ["Reply STOP to opt out", "txt STOP to end", "STOP to {short}", "To unsubscribe reply STOP",
             "Opt out: txt NO", "Stop? Send END to {short}", "Text STOP 2 stop", "Unsub: reply X",
             "STOP2END", "send STOP to quit"],
    "contact": ["{premium}", "{short}", "{freephone}", "{premium}"],
    "deadline": ["midnight", "Friday", "5pm today", "the 30th", "end of day", "tomorrow", "Sunday",
                 "the end of the week", "12 noon"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
    "courier": ["Your courier", "Parcel services", "Delivery update", "Postal service", "Your driver",
                "Parcel Team", "Depot notice", "Shipping alert"],
    "bank": ["Your bank", "Card Services", "Security Team", "Fraud Alert", "Account Security",
             "Online Banking", "Card Security Dept", "Payments Team", "Bank alert", "BANK NOTICE"],
    "fakename": ["A. Marsh", "J Carver", "M HOLLOWAY", "D. Brennan", "K Osei", "P. Lindqvist",
                 "R Fairweather", "T. Okafor"],
    "subcost": ["£3/wk", "£4.50/week", "£1.50/msg", "3 msgs/wk £1.50 each", "£5/month",
                "$2.99/week", "subscription £3 per week", "£2 per tone", "only £4.50 a week"],
    "quizq": ["what is the capital of France", "how many legs does a spider have",
              "which planet is known as the red planet", "what colour do you get mixing blue and yellow",
              "how many days are in a leap year", "what do bees make", "which ocean is the largest",
              "how many sides does a hexagon have"],
    "girl": ["Kelly", "Jade", "Stacey", "Mia", "Lola", "Tasha", "Amber", "Chloe", "Roxy", "Keira",
             "Becki", "Suzi", "Nikki", "Carla"],
    "datecontact": ["{premium}", "{short}", "{url}", "{premium}"],
    "advisor": ["Emma", "Daniel", "Sophia", "Mr Grant", "Olivia", "James", "Anna"],
    "ringtone": ["ringtones", "tones", "polyphonic tones", "ringtones & wallpapers", "chart tones"],
}

SPAM_FRAMES = [
    # prize draws
    "{shout} You have [been selected to receive|won|been chosen for|qualified for] {prize}[!|.|!!] [To claim|Claim now:|Collect it:] [call|ring|dial] {premium}[ quoting {code}| now|]. {cost}",
    "[Your|Ur] [mobile|number|mobile no.|phone number] [has won|won|was drawn for|is the winner of] {prize} in [our|the] [monthly|weekly|summer|network|customer] [prize draw|draw|giveaway]. [Call {premium}|Txt CLAIM to {short}|Reply YES to {short}|Ring {freephone}] [to claim|to collect|before {deadline}]. {cost}",
    "[Final|Second|Last|URGENT] [notice|reminder|alert]: {prize} [is still waiting|remains unclaimed|is reserved] [for you|for this number|in ur name]. [Claim at|Visit|Go to] {url}[ before {deadline}|]",
    "[You're|U r|You are] our [lucky|1000th|featured|chosen] [customer|visitor|winner] [today|this week]! [Tap|Click|Go to] {url} to [pick|choose|unlock] {prize}[. {stop}|]",
    "[WIN|Win|WIN WIN] {prize} [just|simply] [by answering|for answering] [1|one|a] [simple|easy] question. Txt [WIN|PLAY|GO] to {short}. {cost}",
    "{prize^} [could be yours|is up for grabs|has your name on it]! [Enter|Play|Join] [free|now|today] [at|via] {url}[. {stop}|]",
    "[Important|URGENT] [info|message] for the [user|owner] of {mobile}: [your number|this number] [has been|was] [selected|flagged] for {prize}. [Details|Claim] at {url}",
    # delivery fees
    "[Your|Ur] parcel [could not be delivered|is being held|is on hold|was returned to our depot] [due to|because of] [an unpaid|a] [shipping|customs|handling|redelivery] fee of {fee}. [Pay|Settle it|Reschedule] [at|via|here:] {url}",
    "{courier}: we [tried|attempted] to deliver [your|a] [package|parcel|item] [today|on {weekday}|this morning] [but no one was home|but the address was incomplete]. [Book a new slot|Rearrange delivery|Confirm your address]: {url}",
    "[Your|The] [package|parcel|order] [#|no. |ref ]{trackno} [requires|needs|is awaiting] [address confirmation|a small payment|customs clearance]. [Update|Confirm] [within|in] [24|48|12] hrs [or it will be returned|to avoid return to sender]: {url}",
    "[We|We've] [missed you|been unable to reach you]! [A|Your] [parcel|package] [is waiting|awaits] at [our|the local] depot. [Only|Just] {fee} to [release|redeliver] it: {url}",
    # phishing
    "{bank}: [we have detected|we noticed|there has been] [unusual|suspicious|a new] [activity|sign-in|login|payment attempt] on your account. [If this wasn't you,|If this was not you|Not you?] [verify|secure|confirm] [your details|your account|it] at {url}",
    "[Your|Ur] [account|online banking|card] has been [suspended|locked|restricted|frozen] [for your security|due to a security check|pending verification]. [Restore access|Unlock now|Reactivate] at {url}[ within 24h|]",
    "[A|New] payment of {money} to [a new payee|an unknown merchant|{fakename}] was [requested|attempted|set up] [at {clock}|today]. [If you did not make this,|Didn't authorise this?|Not you?] [call|ring] {freephone} [immediately|now|straight away]",
    "[Dear Customer|Dear customer|Hello], [your|the] [email|mailbox|cloud storage|account] [password expires|storage is full|needs re-validating] [today|in 24 hours|soon]. [Keep your account active|Avoid losing your data|To keep access] [at|here:|via] {url}",
    "[Reminder|Notice|Alert]: your [payment details|billing details|card details] [could not be verified|are out of date|were declined]. [Update|Confirm] [now at|today at|now:|today:] {url} [to avoid|or face] [a late fee|suspension|service interruption]",
    "[Tax office|Revenue dept|Tax notice]: you are [owed|due|entitled to] a refund of {refund}. [Claim|Submit your claim|Apply] [online|now] at {url}[ before {deadline}|]",
    # loans and debt
    "[Need|Need some|Short of] [cash|money|extra cash] [fast|today|before payday]? [Borrow|Get] {loanamt} [with no credit checks|even with bad credit|paid out in 1 hour|in minutes]. [Reply|Txt] [LOAN|CASH|YES] [to {short}|now]",
    "[You have been|U have been|You've been] [pre-approved|accepted|approved] for a loan of [up to|] {loanamt}. [No paperwork|No guarantor|No fees upfront]. [Call|Ring] {freephone} [today|now|to accept]",
    "[Struggling with|Drowning in|Fed up with] [debt|bills|credit card payments]? [Write off|Cut|Clear] up to [70|80|60|85]% [of what you owe|of your debt] with a [government-backed|new|legal] scheme. [Reply INFO|Txt HELP to {short}|Call {freephone}]",
    "[Cash|Money] in your account [today|in 15 mins|by tonight]! [Loans from|Borrow] £{smallloan} to £{bigloan}[, all credit types welcome|, instant decision|]. {url}",
    # ringtones and subscriptions
    "[Get|Download|Grab] the [hottest|latest|No.1|top 10] {ringtone} [now|this week]! Txt [TONE|RING|HITS] to {short}. {subcost}[ {stop}|]",
    "[Your|Ur] [free|bonus] [ringtone|wallpaper|game] is [waiting|ready]! [Reply|Txt] [GET|YES|FREE] [to download|now]. {subcost}[. {stop}|]",
    "[Join|Join the|Become a member of the] [VIP|Gold|Mega] [tones|games|jokes] club [for|at] [just|only] {subcost}[ and get {n} free downloads|]. Txt [JOIN|VIP] to {short}",
    "[Fancy a|Want a|Get a] [daily|weekly] [joke|horoscope|love tip|football update] [sent to|delivered to] [your|ur] phone? Txt [DAILY|GO|START] to {short}. {subcost}. {stop}",
    "[Your|Ur] [subscription|membership|antivirus|streaming plan] [will renew|renews] [today|tomorrow] for {subamt}. [To cancel|Didn't order this?|Cancel here]: {url}",
    # quizzes
    "[Quiz|QUIZ TIME|Q]: {quizq}? [Txt|Reply] [A, B or C|your answer] to {short} [to enter the draw for|and WIN|for a chance at] {prize}. {cost}",
    "[Answer|Answer just] [3|5|three] [easy|simple|quick] questions [and|to] [win|be in with a chance of winning] {prize}! [Txt|Text] [QUIZ|PLAY|START] to {short}. {cost}",
    "[You got|U scored|You answered] [2|4|3] out of [3|5] right! [One more|Just 1 more|Last] question [to win|for] {prize}. [Reply|Txt] [NEXT|GO] to {short}. {cost}",
    "[Think you know|How well do u know|Test your] [your music|ur footy|general knowledge|pop trivia]? [Play|Enter] our [{midamt}|cash] [trivia|quiz] [tonight|this week]: txt [TRIVIA|QUIZ] to {short}. {cost}",
    # dating and chat lures
    "[Hi|Hey|Hiya|Heyy] [it's|its|this is] {girl}[ :)| ;)|]. [Saw|Just saw|Found] [your|ur] [profile|number|pic][ and|,] [wanna|want to|fancy a] [chat|chat tonight|get to know me]? [Text|Call|Reply to] me on {datecontact}. {cost}",
    "[{n} singles|Lonely singles|Local singles|{n} ladies] [in your area|near you|in ur town] [want to|are waiting to|wanna] [chat|meet|talk] [tonight|now]! [Txt [DATE|CHAT|MEET] to {short}|Call {premium}|Chat now at {url}|Meet them at {url}]. {cost}",
    "[Someone|A secret admirer|A mystery person] [fancies you|has a crush on you|likes u]! [Find out who|To reveal their name|To see who it is] [txt|reply|text] [WHO|REVEAL|NAME] to {short}. {cost}",
    "{girl} [sent you|has sent u] a [private|flirty|new] [message|photo|voice note]. [To view|To read|Open it] [call|go to|visit] {datecontact}[ now|]. {cost}",
    # crypto and investment
    "[Turn|Grow|Make] {crypto_pair} in [7|10|14|30] days with [our|the] [AI trading bot|crypto signals|auto-trader|new coin]. [Join|Start|Sign up] [free|now|today]: {url}",
    "[New|Hot|Secret] [coin|token|crypto] [launching|listing|going live] [tonight|this week|in 48hrs]. [Early buyers|Insiders|Our members] [made|are making|expect] [x{mult}|{pct}%] [returns|profit|gains]. [Don't miss out|Get in early|Limited spots]: {url}",
    "[Your|Ur] crypto wallet [has received|was credited with|has a pending] {coinamt} [BTC|ETH|coins]. [Withdraw|Claim|Confirm] [now|within 24h] at {url}[ or it will be returned|]",
    "[Hi|Hello], I'm {advisor} [from a trading|from an investment|from a crypto|, part of a trading] [group|team]. [Our|My] [students|clients|members] [earn|make|profit] {money} [a week|daily|every day] [from home|with 10 mins a day]. [Reply|Txt] [YES|INFO|START] [to learn how|for details|if interested]",
    # jobs
    "[Earn|Make|Get paid] {dayrate} [a day|per day|daily] [working from home|from your phone|in your spare time][, no experience needed|, flexible hours|]. [Reply|Txt] [JOB|WORK|YES] [to {short}|for details]",
    "[Hi|Hello], we [reviewed|saw|found] [your|ur] [CV|profile] [online|on a job site] and [would like to|want to] offer [you|u] a [part-time|remote|flexible] [role|position|job] [paying|worth] {dayrate} [per day|a day]. [Reply|Contact us on] {contact}",
    "[Review|Rate|Like] [videos|products|hotels] [online|on your phone] and [get paid|earn] {smallpay} [per task|for each one|every time]! [Start|Apply] [now|today]: {url}",
    # misc scams
    "[You have|U have] [1 new voicemail|2 new voicemails|3 new voice messages|a new voice message|an urgent voicemail]. [Listen|Listen now|Tap to listen] [at|here:|via] {url}",
    "[Missed call|Missed calls] from {freephone}[ about your account|]. [Call back|Ring back|Return call] [urgently|asap|today] on {premium}[. {cost}|]",
    "[You may be|You could be|Ur] [entitled to|owed|due] [up to|] {money} [compensation|in compensation|as a refund] for [the accident you had|mis-sold insurance|a delayed flight|your car finance]. [Reply|Txt] [CLAIM|YES] [to find out|for a free check|now]. {stop}",
    "[Had|Been in] [an accident|a car accident|a slip or trip] [in the last 3 years|recently]? [Claim|Get] [up to|] {money} [today|fast|no win no fee]. Call {freephone}",
    "[Complete|Take|Fill in] [our|a] [quick|2-min|short] [survey|questionnaire] and [get|receive|claim] a {midamt} [gift card|voucher|reward][!|.] {url}",
    "[Your|Ur] [contract|phone|mobile] [is due|qualifies] for a [FREE|free] upgrade[!|.] [Get|Pick] the latest [handset|phone|model] [at no extra cost|free|for £0 upfront]. [Call|Ring] {freephone} or [reply|txt] [UPGRADE|YES] [now|today]",
    "[Hi Mum|Hi mum|Dad|Hi dad], [it's me|its me], [new number|I lost my phone|this is my new phone]. [Can you|Can u|Could you] [send|transfer] [me|] {midamt} [for rent|for a bill|today]? [Will pay u back|I'll explain later|Urgent x]",
]

TXTSPEAK = [
    (r"^you$", "u"), (r"^your$", "ur"), (r"^to$", "2"), (r"^for$", "4"),
    (r"^now$", "NOW"), (r"^free$", "FREE"), (r"^win$", "WIN"), (r"^please$", "pls"),
]
URLISH = re.compile(r"[./@]\w")


def map_words(text, fn):
    """Apply fn to each space-separated token that is not part of a URL or address."""
    return " ".join(tok if URLISH.search(tok) else fn(tok) for tok in text.split(" "))


def txtspeak(rng, tok, p):
    core = tok.strip(",.!?:;")
    for pattern, repl in TXTSPEAK:
        if re.match(pattern, core, flags=re.IGNORECASE) and rng.random() < p:
            return tok.replace(core, repl)
    return tok


def roughen_spam(rng, text):
    if rng.random() < 0.25:
        p = rng.choice([0.5, 1.0])
        text = map_words(text, lambda tok: txtspeak(rng, tok, p))
    r = rng.random()
    if r < 0.08:
        text = map_words(text, str.upper)
    elif r < 0.22:
        head, sep, tail = text.partition(". ")
        text = map_words(head, str.upper) + sep + tail if sep else text
    if rng.random() < 0.12:
        text = text.replace("!", "!!")
    if rng.random() < 0.1:
        text = rng.choice(["FreeMsg: ", "FREE MSG: ", "Msg: ", "(Promo) ", "SMS ALERT: ", "Info: "]) + text
    return tidy(text)


# --------------------------------------------------------------------------
# Building and checking
# --------------------------------------------------------------------------


def words(text):
    return re.findall(r"[a-z0-9£$']+", text.lower())


def ngram_share(messages, n=6):
    """Largest fraction of messages that contain the same n-word sequence."""
    df = Counter()
    for m in messages:
        w = words(m)
        df.update({tuple(w[i:i + n]) for i in range(len(w) - n + 1)})
    if not df:
        return 0.0, ()
    gram, count = df.most_common(1)[0]
    return count / len(messages), gram


CANON = {"u": "you", "ur": "your", "r": "are", "wat": "what", "wot": "what", "2moro": "tomorrow",
         "tmrw": "tomorrow", "tomoz": "tomorrow", "2nite": "tonight", "tonite": "tonight",
         "pls": "please", "plz": "please", "thx": "thanks", "ta": "thanks", "cos": "because",
         "coz": "because", "l8r": "later", "gr8": "great", "mins": "minutes", "min": "minutes",
         "dont": "don't", "im": "i'm", "cant": "can't", "ill": "i'll", "gonna": "going",
         "wanna": "want", "b4": "before", "smth": "something", "sumthin": "something", "w": "with",
         "tho": "though", "ppl": "people", "cu": "see", "2": "to", "4": "for", "okay": "ok",
         "k": "ok", "kk": "ok", "youre": "you're", "txt": "text"}


def canonical(text):
    """Lower-cased words with SMS abbreviations expanded and digit runs masked."""
    return [CANON.get(w, w) for w in words(re.sub(r"\d+", "#", text))]


def too_close(text, seen, limit=0.7):
    """True if text is nearly the same as a message already kept."""
    ws = set(canonical(text))
    joined = " ".join(canonical(text))
    for other_set, other_joined in seen:
        if len(ws & other_set) / max(1, len(ws | other_set)) >= limit:
            return True
        matcher = difflib.SequenceMatcher(None, joined, other_joined)
        if matcher.real_quick_ratio() >= 0.85 and matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85:
            return True
    return False


def signature(text):
    return set(canonical(text)), " ".join(canonical(text))


def build_class(rng, written, frames, slots, roughen, target):
    messages = [line.strip() for line in written.splitlines() if line.strip()]
    assert len(messages) == len(set(messages)), "duplicate in hand-written list"
    seen = {m.lower() for m in messages}
    sigs = [signature(m) for m in messages]
    uses = Counter()
    cap = 1 + (target - len(messages)) // len(frames) + 2   # spread usage across frames
    attempts = 0
    while len(messages) < target:
        attempts += 1
        assert attempts < 200_000, "frames cannot produce enough distinct messages"
        frame = rng.choice(frames)
        if uses[frame] >= cap:
            continue
        text = roughen(rng, expand(rng, frame, slots))
        if "\t" in text or not text or text.lower() in seen or too_close(text, sigs):
            continue
        uses[frame] += 1
        messages.append(text)
        seen.add(text.lower())
        sigs.append(signature(text))
    return messages


def build():
    rng = random.Random(SEED)
    ham = build_class(rng, HAM_WRITTEN, HAM_FRAMES, HAM_SLOTS, roughen_ham, N_PER_CLASS)
    spam = build_class(rng, SPAM_WRITTEN, SPAM_FRAMES, SPAM_SLOTS, roughen_spam, N_PER_CLASS)
    rows = [("ham", m) for m in ham] + [("spam", m) for m in spam]
    rng.shuffle(rows)
    return rows


def check(rows):
    texts = [t for _, t in rows]
    assert len(texts) == len(set(texts)), "exact duplicate"
    assert all("\t" not in t and "\n" not in t and t == t.strip() and t for t in texts)
    for label in ("ham", "spam"):
        msgs = [t for lab, t in rows if lab == label]
        assert len(msgs) >= 550, (label, len(msgs))
        share, gram = ngram_share(msgs)
        assert share <= 0.03, (label, share, gram)
    for t in texts:
        for host in re.findall(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b", t.lower()):
            assert host.endswith(".example"), f"host {host!r} is not under .example: {t}"


def render(rows):
    return "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows)


def main():
    rows = build()
    check(rows)
    data = render(rows)
    if "--check" in sys.argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        print("up to date" if current == data else "messages.tsv is STALE")
        sys.exit(0 if current == data else 1)
    OUT.write_text(data, encoding="utf-8", newline="\n")
    counts = Counter(label for label, _ in rows)
    print(f"wrote {OUT.name}: {counts['ham']} ham, {counts['spam']} spam")


if __name__ == "__main__":
    main()
