import re, sys, statistics as st
rows=[]
for l in open(sys.argv[1] if len(sys.argv)>1 else 'results.txt'):
    d=dict(re.findall(r'(\w+)=([^\s\[\]]+)', l.split(' before[')[0])); rows.append(d)
cols=['thread_cpu_us_per_hold','proc_cpu_us_per_hold_clk','proc_cpu_us_per_hold_incl_3s_tail','thread_user_ms','thread_sys_ms','wall_ms','write_MB','write_MB_incl_tail','dev_written_MB']
short=['thrCPUus/hold','procCPUus/hold','proc+tail','thr_usr_ms','thr_sys_ms','wall_ms','wrMB','wrMB+tail','devMB']
print('| engine | holds/txn | run | '+' | '.join(short)+' |'); print('|'+'---|'*(3+len(cols)))
for e in ['redb','fjall']:
  for bs in ['20','100']:
    g=[r for r in rows if r['engine']==e and r['holds_per_txn']==bs]
    for r in g: print(f"| {e} | {bs} | {r['run']} | "+' | '.join(r[c] for c in cols)+' |')
    print(f"| **{e}** | **{bs}** | **median** | "+' | '.join(f"**{st.median(float(r[c]) for r in g):.1f}**" for c in cols)+' |')
