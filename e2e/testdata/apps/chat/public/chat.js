// The chat example's HTML5 front end: the same application (main.asc),
// SharedObject "room" and calls a Flash client of it used, through the
// hub's JavaScript library over RTMP in a WebSocket.
//
// The page is served by the hub at /<app>/ (the application's public/
// folder); the application is the first element of the page's path, the
// instance the room the user picks. Query parameters prefill the form:
// ?nick=…&room=…, and ?enc=0 connects with AMF0 (default AMF3).
import { NetConnection, SharedObject, Responder } from "/sdk/rtmphub.js";

const $ = (id) => document.getElementById(id);
const app = location.pathname.split("/")[1] || "chat";
const params = new URLSearchParams(location.search);
const maxMessages = 500; // the list keeps the latest ones

let nc = null;
let so = null;
let myNick = "";

// window.chat is the page's state, for a person in the devtools console
// and for tests.
const chat = (window.chat = {
	state: "idle", // idle, connecting, connected, rejected, failed, closed
	protocol: "",
	error: "",
	messages: [], // {from, text}, as they came
	get nc() { return nc; },
	get so() { return so; },
});

$("nick").value = params.get("nick") || "";
$("room").value = params.get("room") || "lobby";

function setStatus(text) {
	$("status").textContent = text;
}

function showError(text) {
	chat.error = text;
	$("error").textContent = text;
	$("error").hidden = !text;
}

// connected enables the controls that need a connection.
function setConnected(on) {
	for (const id of ["new-topic", "set-topic", "text", "send", "disconnect"]) {
		$(id).disabled = !on;
	}
	for (const id of ["nick", "room", "connect"]) {
		$(id).disabled = on;
	}
}

function addMessage(from, text) {
	from = String(from);
	text = String(text);
	chat.messages.push({ from, text });
	const list = $("messages");
	const li = document.createElement("li");
	if (from === "server") {
		li.className = "server";
	}
	const time = document.createElement("time");
	const now = new Date();
	time.className = "time";
	time.dateTime = now.toISOString();
	time.textContent = now.toLocaleTimeString();
	const who = document.createElement("span");
	who.className = "from";
	who.textContent = from + ":";
	const body = document.createElement("span");
	body.className = "text";
	body.textContent = text;
	li.append(time, who, body);
	// Follow the conversation unless the reader scrolled up.
	const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
	list.append(li);
	while (list.children.length > maxMessages) {
		list.firstElementChild.remove();
	}
	if (atEnd) {
		list.scrollTop = list.scrollHeight;
	}
}

// render shows the room's slots.
function render() {
	const data = so ? so.data : {};
	$("topic").textContent = data.topic === undefined ? "(none)" : String(data.topic);
	let users = data.users || [];
	if (!Array.isArray(users)) {
		users = Object.values(users); // an ECMA array or object of nicknames
	}
	const ul = $("users");
	ul.replaceChildren(...users.map((u) => {
		const li = document.createElement("li");
		li.textContent = String(u);
		if (u === myNick) {
			li.className = "me";
			li.setAttribute("aria-label", u + " (you)");
		}
		return li;
	}));
	$("user-count").textContent = String(users.length);
}

function joinRoom(e) {
	e.preventDefault();
	const nick = $("nick").value.trim();
	const room = $("room").value.trim();
	if (!nick || !$("room").checkValidity()) {
		showError(!nick ? "Pick a nickname." : "A room name has letters, digits, _ . - only.");
		return;
	}
	showError("");
	myNick = nick;
	chat.state = "connecting";
	setStatus("Connecting to " + room + "…");
	$("room-title").textContent = "— " + room;
	$("connect").disabled = true;

	nc = new NetConnection();
	nc.objectEncoding = params.get("enc") === "0" ? 0 : 3;
	// The server may call these (main.asc: pingMe).
	nc.client = {
		ping(x) { return typeof x === "number" ? x + 1 : x; },
	};
	const conn = nc;
	nc.onStatus = (info) => {
		if (conn !== nc) {
			return; // a connection the user has left
		}
		onStatus(info);
	};
	nc.connect("/" + app + "/" + room, nick);
}

function onStatus(info) {
	switch (info.code) {
	case "NetConnection.Connect.Success":
		chat.state = "connected";
		setStatus("Connected to " + $("room").value + " as " + myNick + ".");
		setConnected(true);
		so = SharedObject.getRemote("room", nc.uri, false);
		so.msg = (from, text) => addMessage(from, text);
		so.onSync = (list) => {
			for (const c of list) {
				if (c.code === "reject" && c.name === "topic") {
					addMessage("server", "your topic change was overtaken by another");
				}
			}
			render();
		};
		so.connect(nc);
		nc.call("whoami", new Responder((me) => {
			chat.protocol = me && me.protocol ? String(me.protocol) : "";
			setStatus("Connected to " + $("room").value + " as " + myNick + " (" + chat.protocol + ").");
		}, () => {}));
		$("text").focus();
		break;
	case "NetConnection.Connect.Rejected": {
		chat.state = "rejected";
		const why = (info.application && info.application.description) || info.description || "no reason given";
		showError("The room refused you: " + why);
		setStatus("Not connected.");
		break;
	}
	case "NetConnection.Connect.Failed":
		chat.state = "failed";
		showError("Could not reach the chat server" + (info.description ? ": " + info.description : "."));
		setStatus("Not connected.");
		break;
	case "NetConnection.Connect.Closed":
		if (chat.state === "connected") {
			chat.state = "closed";
			setStatus("Disconnected.");
		}
		break;
	default:
		return; // other events leave the page as it is
	}
	if (chat.state !== "connected") {
		dropConnection();
	}
}

// dropConnection forgets the connection; the form may join again.
function dropConnection() {
	if (so) {
		so.close();
		so = null;
	}
	if (nc) {
		const old = nc;
		nc = null;
		old.close();
	}
	setConnected(false);
	render();
	$("topic").textContent = "(not connected)";
}

function leave() {
	chat.state = "closed";
	setStatus("You left the room.");
	dropConnection();
}

function say(e) {
	e.preventDefault();
	const text = $("text").value;
	if (!text.trim() || !nc) {
		return;
	}
	$("text").value = "";
	nc.call("say", new Responder(() => {}, (info) => {
		showError("Your message was not sent: " + (info.description || info.code));
	}), text);
}

function changeTopic(e) {
	e.preventDefault();
	const topic = $("new-topic").value.trim();
	if (!topic || !so) {
		return;
	}
	$("new-topic").value = "";
	so.setProperty("topic", topic);
	render(); // the local copy shows the change at once
}

$("join-form").addEventListener("submit", joinRoom);
$("disconnect").addEventListener("click", leave);
$("say-form").addEventListener("submit", say);
$("topic-form").addEventListener("submit", changeTopic);
window.addEventListener("pagehide", () => { if (nc) nc.close(); });
chat.ready = true;
