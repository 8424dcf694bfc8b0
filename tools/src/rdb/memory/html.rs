//! The HTML report: one self-contained page (inline CSS and JS, no external
//! assets) with a squarified treemap of memory by key prefix and the tables.

use super::{human, key_text, prefix_label, Args, Report, TTL_BUCKETS};
use crate::rdb::json::Json;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The treemap data: level-1 prefixes with their level-2 children.
fn tree(r: &Report) -> Vec<u8> {
    let mut j = Json::new(false);
    j.raw("[");
    let level1 = r.prefixes(0, 60);
    for (n, (p, t)) in level1.iter().enumerate() {
        j.raw(if n > 0 {
            ",\n{\"name\": "
        } else {
            "\n{\"name\": "
        });
        j.str(&prefix_label(p));
        j.raw(", \"bytes\": ");
        j.int(t.bytes);
        j.raw(", \"keys\": ");
        j.int(t.keys);
        j.raw(", \"children\": [");
        if r.by_prefix.len() > 1 && !p.is_empty() {
            let mut kids: Vec<_> = r.by_prefix[1]
                .iter()
                .filter(|(k, _)| k.as_slice().starts_with(p) && k.as_slice().len() > p.len())
                .collect();
            kids.sort_by_key(|k| std::cmp::Reverse(k.1.bytes));
            for (i, (k, kt)) in kids.iter().take(40).enumerate() {
                j.raw(if i > 0 {
                    ", {\"name\": "
                } else {
                    "{\"name\": "
                });
                j.str(&key_text(k.as_slice()));
                j.raw(", \"bytes\": ");
                j.int(kt.bytes);
                j.raw(", \"keys\": ");
                j.int(kt.keys);
                j.raw("}");
            }
        }
        j.raw("]}");
    }
    j.raw("]");
    j.out
}

const SCRIPT: &str = r#"
function fmt(b){const u=['B','KiB','MiB','GiB','TiB'];let i=0;while(b>=1024&&i<4){b/=1024;i++;}return (i?b.toFixed(1):b)+' '+u[i];}
function worst(row,w){let s=0,mx=0,mn=Infinity;for(const r of row){s+=r.a;mx=Math.max(mx,r.a);mn=Math.min(mn,r.a);}return Math.max(w*w*mx/(s*s),(s*s)/(w*w*mn));}
function squarify(items,x,y,w,h,out){
  items=items.filter(i=>i.a>0);
  while(items.length){
    const side=Math.min(w,h);let row=[items[0]],k=1;
    while(k<items.length&&worst(row.concat([items[k]]),side)<=worst(row,side)){row.push(items[k]);k++;}
    items=items.slice(k);const s=row.reduce((t,r)=>t+r.a,0);
    if(w>=h){const rw=s/h;let yy=y;for(const r of row){const rh=r.a/rw;out.push([r.d,x,yy,rw,rh]);yy+=rh;}x+=rw;w-=rw;}
    else{const rh=s/w;let xx=x;for(const r of row){const rw=r.a/rh;out.push([r.d,xx,y,rw,rh]);xx+=rw;}y+=rh;h-=rh;}
  }
}
function layout(nodes,x,y,w,h){const tot=nodes.reduce((t,n)=>t+n.bytes,0)||1;const out=[];squarify(nodes.map(n=>({a:n.bytes*w*h/tot,d:n})),x,y,w,h,out);return out;}
function draw(){
  const box=document.getElementById('map');box.innerHTML='';const W=box.clientWidth,H=box.clientHeight;
  layout(DATA,0,0,W,H).forEach(([d,x,y,w,h],i)=>{
    const e=document.createElement('div');e.className='cell';
    Object.assign(e.style,{left:x+'px',top:y+'px',width:Math.max(w-2,0)+'px',height:Math.max(h-2,0)+'px',background:'hsl('+((i*47)%360)+',55%,72%)'});
    e.title=d.name+'\n'+fmt(d.bytes)+', '+d.keys+' keys';
    if(w>50&&h>18){const l=document.createElement('span');l.textContent=d.name+' '+fmt(d.bytes);e.appendChild(l);}
    box.appendChild(e);
    const rest=d.bytes-(d.children||[]).reduce((t,c)=>t+c.bytes,0);
    if(d.children&&d.children.length&&w>60&&h>50){
      const kids=d.children.concat(rest>0?[{name:'(rest)',bytes:rest,keys:0}]:[]);
      layout(kids,x+2,y+18,w-6,h-22).forEach(([c,cx,cy,cw,ch])=>{
        const s=document.createElement('div');s.className='sub';
        Object.assign(s.style,{left:cx+'px',top:cy+'px',width:Math.max(cw-2,0)+'px',height:Math.max(ch-2,0)+'px'});
        s.title=c.name+'\n'+fmt(c.bytes)+(c.keys?', '+c.keys+' keys':'');
        if(cw>60&&ch>14)s.textContent=c.name;box.appendChild(s);
      });
    }
  });
}
window.addEventListener('resize',draw);draw();
"#;

fn rows_table(title: &str, rows: &[(String, u64, u64)], total: u64) -> String {
    let mut s = format!(
        "<h2>{}</h2><table><tr><th></th><th>keys</th><th>bytes</th><th>%</th></tr>",
        esc(title)
    );
    for (name, keys, bytes) in rows {
        let pct = if total == 0 {
            0.0
        } else {
            *bytes as f64 * 100.0 / total as f64
        };
        s.push_str(&format!(
            "<tr><td>{}</td><td>{keys}</td><td title=\"{bytes}\">{}</td><td>{pct:.1}%</td></tr>",
            esc(name),
            human(*bytes)
        ));
    }
    s.push_str("</table>");
    s
}

/// The page.
pub fn page(r: &Report, a: &Args) -> String {
    let t = r.total.bytes;
    let mut body = format!(
        "<h1>Memory report: {}</h1><p>{} keys, estimated {} in memory (Redis 7.0 encodings, jemalloc); dump file {}.</p>",
        esc(&a.file.display().to_string()),
        r.total.keys,
        human(t),
        human(r.file_size)
    );
    body.push_str(&format!(
        "<h2>Memory by key prefix (separator {})</h2><div id=\"map\"></div>",
        esc(&format!("{:?}", a.separator))
    ));
    let conv = |m: Vec<(String, super::Tally)>| {
        m.into_iter()
            .map(|(k, v)| (k, v.keys, v.bytes))
            .collect::<Vec<_>>()
    };
    body.push_str(&rows_table(
        "By type",
        &conv(r.by_type.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
        t,
    ));
    body.push_str(&rows_table(
        "By encoding",
        &conv(
            r.by_encoding
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
        t,
    ));
    body.push_str(&rows_table(
        "By database",
        &conv(
            r.by_db
                .iter()
                .map(|(k, v)| (format!("db{k}"), *v))
                .collect(),
        ),
        t,
    ));
    for level in 0..r.by_prefix.len() {
        let rows = conv(
            r.prefixes(level, 50)
                .into_iter()
                .map(|(p, v)| (prefix_label(&p), v))
                .collect(),
        );
        body.push_str(&rows_table(
            &format!("Top prefixes, level {}", level + 1),
            &rows,
            t,
        ));
    }
    let mut ttl = vec![("no expiry".to_string(), r.no_ttl)];
    ttl.extend(
        TTL_BUCKETS
            .iter()
            .zip(&r.ttl)
            .map(|((l, _), v)| (l.to_string(), *v)),
    );
    body.push_str(&rows_table("By time to live", &conv(ttl), t));
    body.push_str("<h2>Biggest keys</h2><table><tr><th>key</th><th>db</th><th>type</th><th>encoding</th><th>elements</th><th>bytes</th></tr>");
    for k in r.top() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td title=\"{}\">{}</td></tr>",
            esc(&key_text(&k.key)),
            k.db,
            k.kind,
            k.encoding,
            k.elements,
            k.bytes,
            human(k.bytes)
        ));
    }
    body.push_str("</table>");
    // The data is JSON inside a script element: keep "</" out of it.
    let data = String::from_utf8_lossy(&tree(r)).replace("</", "<\\/");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>basalt-rdb memory report</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}\
#map{{position:relative;width:100%;height:520px;background:#eee;overflow:hidden}}\
.cell{{position:absolute;border:1px solid #fff;overflow:hidden;font-size:12px;box-sizing:border-box}}\
.cell span{{padding:2px 4px;display:block;white-space:nowrap;font-weight:600}}\
.sub{{position:absolute;border:1px solid rgba(255,255,255,.7);background:rgba(255,255,255,.25);font-size:11px;overflow:hidden;white-space:nowrap;box-sizing:border-box;padding:1px 3px}}\
table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left;font-family:monospace}}\
</style></head><body>{body}<script>const DATA={data};{SCRIPT}</script></body></html>\n"
    )
}
